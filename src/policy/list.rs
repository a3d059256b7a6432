//! Slot-indexed intrusive doubly linked lists: no pointers, no `unsafe`.
//!
//! A [`Links`] arena stores, for every node number, the numbers of its two
//! neighbours ([`NIL`] for none); a [`List`] is only the head, tail and length
//! of one chain through it. One arena can thread any number of disjoint lists
//! (LFU keeps one per frequency bucket); a node is in at most one list at a
//! time. Node numbers are dense (slots, bucket ids), so the arena is a plain
//! `Vec` that grows to the largest number seen and then stops allocating.
//!
//! [`Recency`] is the one-list core shared by LRU and MRU, and
//! `recency_policy!` defines their public wrappers around it.

use super::Slot;

/// "No node": the end of a chain, or an empty list's head and tail.
pub(crate) const NIL: u32 = u32::MAX;

/// The `prev` of a node in no list (no node has this number either).
const OFF: u32 = u32::MAX - 1;

/// The ends and length of one list threaded through a [`Links`] arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct List {
    head: u32,
    tail: u32,
    len: usize,
}

impl List {
    /// An empty list.
    pub(crate) const fn new() -> Self {
        List {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    /// The first node, if any.
    pub(crate) fn head(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// Number of nodes in the list.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the list has no node.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for List {
    fn default() -> Self {
        List::new()
    }
}

/// The links of one node: 8 bytes, so that a node never straddles two
/// cache lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    /// The previous node, [`NIL`] at the head, [`OFF`] when in no list.
    prev: u32,
    next: u32,
}

impl Node {
    const DETACHED: Node = Node {
        prev: OFF,
        next: NIL,
    };

    /// Whether the node is in some list.
    #[inline]
    fn linked(&self) -> bool {
        self.prev != OFF
    }
}

/// Per-node `prev`/`next` links shared by any number of disjoint [`List`]s.
///
/// Every method taking a `list` must be given the list the node belongs to
/// (or will belong to); the arena itself does not know which list that is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Links {
    nodes: Vec<Node>,
}

impl Links {
    /// An empty arena.
    pub(crate) const fn new() -> Self {
        Links { nodes: Vec::new() }
    }

    /// Whether node `n` is currently in some list.
    #[inline]
    pub(crate) fn contains(&self, n: u32) -> bool {
        self.nodes.get(n as usize).is_some_and(Node::linked)
    }

    /// The node after `n` in its list.
    pub(crate) fn next(&self, n: u32) -> Option<u32> {
        let next = self.nodes[n as usize].next;
        (next != NIL).then_some(next)
    }

    /// Makes room for node `n` (amortised; no allocation once the arena has
    /// seen its largest node number).
    #[inline]
    fn ensure(&mut self, n: u32) {
        if n as usize >= self.nodes.len() {
            self.grow(n);
        }
    }

    #[cold]
    fn grow(&mut self, n: u32) {
        assert!(n < OFF, "node numbers {OFF} and {NIL} are reserved");
        self.nodes.resize(n as usize + 1, Node::DETACHED);
    }

    /// Links the detached node `n` in front of `list`'s head.
    #[inline]
    pub(crate) fn push_front(&mut self, list: &mut List, n: u32) {
        self.ensure(n);
        self.link_front(list, n);
    }

    /// [`push_front`](Self::push_front) of a node the arena has room for.
    #[inline]
    fn link_front(&mut self, list: &mut List, n: u32) {
        debug_assert!(!self.nodes[n as usize].linked(), "node {n} already linked");
        let old = list.head;
        self.nodes[n as usize] = Node {
            prev: NIL,
            next: old,
        };
        if old == NIL {
            list.tail = n;
        } else {
            self.nodes[old as usize].prev = n;
        }
        list.head = n;
        list.len += 1;
    }

    /// Links the detached node `n` right after `at`, a node of `list`.
    pub(crate) fn insert_after(&mut self, list: &mut List, at: u32, n: u32) {
        self.ensure(n);
        debug_assert!(self.contains(at), "anchor {at} not linked");
        debug_assert!(!self.nodes[n as usize].linked(), "node {n} already linked");
        let next = self.nodes[at as usize].next;
        self.nodes[n as usize] = Node { prev: at, next };
        self.nodes[at as usize].next = n;
        if next == NIL {
            list.tail = n;
        } else {
            self.nodes[next as usize].prev = n;
        }
        list.len += 1;
    }

    /// Unlinks node `n`, a member of `list`.
    #[inline]
    pub(crate) fn unlink(&mut self, list: &mut List, n: u32) {
        debug_assert!(self.contains(n), "node {n} not linked");
        let Node { prev, next } = self.nodes[n as usize];
        if prev == NIL {
            list.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        self.nodes[n as usize] = Node::DETACHED;
        list.len -= 1;
    }

    /// Moves node `n`, a member of `list`, to the front of `list` (the
    /// hit path of LRU and MRU: relinks in place, without detaching).
    #[inline]
    pub(crate) fn move_to_front(&mut self, list: &mut List, n: u32) {
        debug_assert!(self.contains(n), "node {n} not linked");
        let old = list.head;
        if old == n {
            return;
        }
        // Not the head: `n` has a previous node, and the head is another node.
        let Node { prev, next } = self.nodes[n as usize];
        self.nodes[prev as usize].next = next;
        if next == NIL {
            list.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        self.nodes[n as usize] = Node {
            prev: NIL,
            next: old,
        };
        self.nodes[old as usize].prev = n;
        list.head = n;
    }

    /// Unlinks and returns the first node of `list`.
    #[inline]
    pub(crate) fn pop_front(&mut self, list: &mut List) -> Option<u32> {
        let n = list.head()?;
        self.unlink(list, n);
        Some(n)
    }

    /// Unlinks and returns the last node of `list`.
    #[inline]
    pub(crate) fn pop_back(&mut self, list: &mut List) -> Option<u32> {
        let n = (list.tail != NIL).then_some(list.tail)?;
        self.unlink(list, n);
        Some(n)
    }

    /// Detaches every node, keeping the allocation. The caller resets its
    /// lists to [`List::new`].
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
    }

    /// The nodes of `list`, head first.
    #[cfg(test)]
    pub(crate) fn to_vec(&self, list: &List) -> Vec<u32> {
        let mut out = Vec::with_capacity(list.len);
        let mut n = list.head;
        while n != NIL && out.len() <= self.nodes.len() {
            out.push(n);
            n = self.nodes[n as usize].next;
        }
        out
    }

    /// Checks that `lists` are exactly the lists threaded through this arena:
    /// each is a well-formed chain (back links mirror forward links, ends and
    /// length right, no cycle), they are disjoint, and every linked node is
    /// in one of them. Panics on the first violation.
    #[cfg(test)]
    pub(crate) fn validate(&self, lists: &[&List]) {
        let mut seen = vec![false; self.nodes.len()];
        let mut total = 0;
        for list in lists {
            assert_eq!(list.head == NIL, list.tail == NIL, "one end NIL: {list:?}");
            assert_eq!(list.head == NIL, list.len == 0, "len vs ends: {list:?}");
            let mut prev = NIL;
            let mut n = list.head;
            let mut count = 0;
            while n != NIL {
                let node = self.nodes[n as usize];
                assert!(node.linked(), "node {n} in a list but not marked linked");
                assert!(!seen[n as usize], "node {n} reached twice");
                seen[n as usize] = true;
                assert_eq!(node.prev, prev, "back link of node {n}");
                count += 1;
                prev = n;
                n = node.next;
            }
            assert_eq!(prev, list.tail, "tail of {list:?}");
            assert_eq!(count, list.len, "length of {list:?}");
            total += count;
        }
        let linked = self.nodes.iter().filter(|node| node.linked()).count();
        assert_eq!(linked, total, "linked nodes outside the given lists");
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.linked() {
                assert_eq!(*node, Node::DETACHED, "stale links on detached node {i}");
            }
        }
    }
}

/// Slots in one list ordered by recency, most recent at the head: the core of
/// [`Lru`](super::Lru) (evicts the tail) and [`Mru`](super::Mru) (evicts the
/// head).
#[derive(Debug, Clone, Default)]
pub(crate) struct Recency {
    links: Links,
    list: List,
}

impl Recency {
    /// An empty order.
    pub(crate) const fn new() -> Self {
        Recency {
            links: Links::new(),
            list: List::new(),
        }
    }

    /// Number of tracked slots.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Starts tracking `slot` as the most recent; a slot already tracked is
    /// simply made the most recent.
    #[inline]
    pub(crate) fn insert(&mut self, slot: Slot) {
        if self.links.contains(slot) {
            self.links.move_to_front(&mut self.list, slot);
        } else {
            self.links.push_front(&mut self.list, slot);
        }
    }

    /// Makes `slot` the most recent; ignored if it is not tracked.
    #[inline]
    pub(crate) fn touch(&mut self, slot: Slot) {
        if self.links.contains(slot) {
            self.links.move_to_front(&mut self.list, slot);
        }
    }

    /// Stops tracking `slot`; ignored if it is not tracked.
    #[inline]
    pub(crate) fn remove(&mut self, slot: Slot) {
        if self.links.contains(slot) {
            self.links.unlink(&mut self.list, slot);
        }
    }

    /// Forgets and returns the least recent slot.
    #[inline]
    pub(crate) fn pop_least_recent(&mut self) -> Option<Slot> {
        self.links.pop_back(&mut self.list)
    }

    /// Forgets and returns the most recent slot.
    #[inline]
    pub(crate) fn pop_most_recent(&mut self) -> Option<Slot> {
        self.links.pop_front(&mut self.list)
    }

    /// Forgets every slot, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.links.clear();
        self.list = List::new();
    }

    /// The tracked slots, most recent first.
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<Slot> {
        self.links.to_vec(&self.list)
    }

    /// Panics unless the list is well formed.
    #[cfg(test)]
    pub(crate) fn validate(&self) {
        self.links.validate(&[&self.list]);
    }
}

/// Defines a public policy over one [`Recency`] list, evicting with the
/// given `Recency` method: [`Lru`](super::Lru) and [`Mru`](super::Mru) differ
/// only in that end. `Policy`, `Slot` and `Recency` must be in scope where it
/// is used.
macro_rules! recency_policy {
    ($(#[$doc:meta])* $name:ident, evict: $pop:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            capacity: usize,
            order: Recency,
        }

        impl $name {
            /// Creates the policy for a memory of `capacity` entries.
            pub fn new(capacity: usize) -> Self {
                $name {
                    capacity,
                    order: Recency::new(),
                }
            }

            /// Number of entries tracked.
            pub fn len(&self) -> usize {
                self.order.len()
            }

            /// Whether no entry is tracked.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Panics unless the internal list is consistent.
            #[cfg(test)]
            fn validate(&self) {
                self.order.validate();
            }
        }

        impl Policy for $name {
            fn tracked(&self) -> Option<usize> {
                Some(self.len())
            }

            const LAST_HIT_ONLY: bool = true;

            fn capacity(&self) -> Option<usize> {
                Some(self.capacity)
            }

            /// Tracks `slot` as the most recently used (re-inserting a tracked
            /// slot only makes it the most recent).
            #[inline]
            fn on_insert(&mut self, slot: Slot) {
                self.order.insert(slot);
            }

            #[inline]
            fn on_hit(&mut self, slot: Slot) {
                self.order.touch(slot);
            }

            #[inline]
            fn on_remove(&mut self, slot: Slot) {
                self.order.remove(slot);
            }

            #[inline]
            fn evict(&mut self) -> Option<Slot> {
                self.order.$pop()
            }

            fn clear(&mut self) {
                self.order.clear();
            }
        }
    };
}
pub(crate) use recency_policy;

/// Test helper: runs a key trace against a policy at slot level, the way the
/// store does (a present key is a hit; otherwise evict if full, then insert
/// into a free slot, reusing freed slots first).
#[cfg(test)]
pub(crate) mod trace {
    use super::super::{Policy, Slot};

    /// Outcome of [`run`].
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) struct Outcome {
        /// Keys in memory at the end, sorted.
        pub(crate) keys: Vec<u32>,
        /// Keys evicted, in order.
        pub(crate) evicted: Vec<u32>,
        /// Number of hits.
        pub(crate) hits: usize,
    }

    /// Drives `policy` with `keys`, calling `check` after every operation.
    pub(crate) fn run<P: Policy>(policy: &mut P, keys: &[u32], check: impl Fn(&P)) -> Outcome {
        let cap = policy.capacity().expect("bounded policy");
        let mut slots: Vec<Option<u32>> = Vec::new();
        let mut free: Vec<Slot> = Vec::new();
        let mut evicted = Vec::new();
        let mut hits = 0;
        for &key in keys {
            if let Some(s) = slots.iter().position(|k| *k == Some(key)) {
                policy.on_hit(s as Slot);
                hits += 1;
                check(policy);
                continue;
            }
            if cap == 0 {
                continue;
            }
            if slots.iter().flatten().count() == cap {
                let victim = policy.evict().expect("full policy names a victim");
                check(policy);
                let old = slots[victim as usize].take().expect("victim is occupied");
                evicted.push(old);
                free.push(victim);
            }
            let s = free.pop().unwrap_or_else(|| {
                slots.push(None);
                (slots.len() - 1) as Slot
            });
            slots[s as usize] = Some(key);
            policy.on_insert(s);
            check(policy);
        }
        let mut keys: Vec<u32> = slots.into_iter().flatten().collect();
        keys.sort_unstable();
        Outcome {
            keys,
            evicted,
            hits,
        }
    }

    /// The DESIGN §3.3 reference trace: maxsize 3, keys 1,2,3,1,4,5,1,6.
    pub(crate) const REFERENCE: [u32; 8] = [1, 2, 3, 1, 4, 5, 1, 6];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pop_both_ends() {
        let mut links = Links::new();
        let mut list = List::new();
        links.validate(&[&list]);
        assert_eq!(links.pop_front(&mut list), None);
        assert_eq!(links.pop_back(&mut list), None);
        for n in [3, 0, 7] {
            links.push_front(&mut list, n);
            links.validate(&[&list]);
        }
        assert_eq!(links.to_vec(&list), vec![7, 0, 3]);
        assert_eq!(list.len(), 3);
        assert_eq!(links.pop_back(&mut list), Some(3));
        links.validate(&[&list]);
        assert_eq!(links.pop_front(&mut list), Some(7));
        links.validate(&[&list]);
        assert_eq!(links.pop_front(&mut list), Some(0));
        links.validate(&[&list]);
        assert!(list.is_empty());
        assert!(!links.contains(0) && !links.contains(7) && !links.contains(100));
    }

    #[test]
    fn unlink_middle_head_tail_and_move() {
        let mut links = Links::new();
        let mut list = List::new();
        for n in 0..5 {
            links.push_front(&mut list, n);
        }
        // 4 3 2 1 0
        links.unlink(&mut list, 2);
        links.validate(&[&list]);
        links.unlink(&mut list, 4);
        links.validate(&[&list]);
        links.unlink(&mut list, 0);
        links.validate(&[&list]);
        assert_eq!(links.to_vec(&list), vec![3, 1]);
        links.move_to_front(&mut list, 1);
        links.validate(&[&list]);
        links.move_to_front(&mut list, 1);
        links.validate(&[&list]);
        assert_eq!(links.to_vec(&list), vec![1, 3]);
        // Reuse a freed node number.
        links.push_front(&mut list, 2);
        links.validate(&[&list]);
        assert_eq!(links.to_vec(&list), vec![2, 1, 3]);
    }

    #[test]
    fn insert_after_and_next() {
        let mut links = Links::new();
        let mut list = List::new();
        links.push_front(&mut list, 0);
        links.insert_after(&mut list, 0, 1); // new tail
        links.validate(&[&list]);
        links.insert_after(&mut list, 0, 2); // middle
        links.validate(&[&list]);
        assert_eq!(links.to_vec(&list), vec![0, 2, 1]);
        assert_eq!(links.next(0), Some(2));
        assert_eq!(links.next(1), None);
        assert_eq!(links.pop_back(&mut list), Some(1));
        links.validate(&[&list]);
    }

    #[test]
    fn several_lists_share_one_arena() {
        let mut links = Links::new();
        let (mut a, mut b) = (List::new(), List::new());
        for n in 0..6 {
            let list = if n % 2 == 0 { &mut a } else { &mut b };
            links.push_front(list, n);
            links.validate(&[&a, &b]);
        }
        links.unlink(&mut a, 2);
        links.push_front(&mut b, 2);
        links.validate(&[&a, &b]);
        assert_eq!(links.to_vec(&a), vec![4, 0]);
        assert_eq!(links.to_vec(&b), vec![2, 5, 3, 1]);
    }

    #[test]
    fn clear_detaches_everything() {
        let mut links = Links::new();
        let mut list = List::new();
        for n in 0..4 {
            links.push_front(&mut list, n);
        }
        links.clear();
        list = List::new();
        links.validate(&[&list]);
        links.push_front(&mut list, 3);
        links.validate(&[&list]);
        assert_eq!(links.to_vec(&list), vec![3]);
    }

    #[test]
    #[should_panic(expected = "back link")]
    fn validate_catches_a_broken_back_link() {
        let mut links = Links::new();
        let mut list = List::new();
        for n in 0..3 {
            links.push_front(&mut list, n);
        }
        links.nodes[0].prev = 2;
        links.validate(&[&list]);
    }

    #[test]
    fn recency_orders_by_use() {
        let mut r = Recency::new();
        for s in 0..4 {
            r.insert(s);
            r.validate();
        }
        r.touch(1);
        r.validate();
        r.touch(9); // not tracked: ignored
        r.remove(9);
        r.validate();
        assert_eq!(r.to_vec(), vec![1, 3, 2, 0]);
        r.insert(2); // already tracked: becomes most recent
        r.validate();
        assert_eq!(r.to_vec(), vec![2, 1, 3, 0]);
        assert_eq!(r.pop_least_recent(), Some(0));
        assert_eq!(r.pop_most_recent(), Some(2));
        r.remove(3);
        r.validate();
        assert_eq!((r.to_vec(), r.len()), (vec![1], 1));
        r.clear();
        r.validate();
        assert_eq!(r.pop_most_recent(), None);
    }
}

//! `describe_args` (and so the `StringKeymap`, which is `describe_args` of
//! the encoding) against the oracle's readable form, on fixed and random
//! keys, and on damaged input.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde::Serialize;

use klepto::key::encode::encode_args;
use klepto::key::{describe_args, Ignore, KeyConfig};
use klepto::keymap::{HashKeymap, Keymap, SerialKeymap, StringKeymap};
use klepto::Error;

use super::oracle::positions::positions;
use super::special_f64;

/// The deepest nesting `describe_args` follows (its documentation).
const MAX_DEPTH: usize = 256;

/// `describe_args` of the encoding, the string key and the oracle's
/// readable form must agree (or all fail).
fn check<A: Serialize + ?Sized>(args: &A, c: &KeyConfig) -> std::result::Result<(), TestCaseError> {
    let oracle = positions(args, c).map(|p| p.to_string());
    let string = StringKeymap.key(args, c);
    let bytes = encode_args(args, c);
    match (oracle, string, bytes) {
        (Ok(o), Ok(s), Ok(b)) => {
            let d = describe_args(&b)
                .map_err(|e| TestCaseError::fail(format!("{e} for {o}: {b:02x?}")))?;
            prop_assert_eq!(&d, &o);
            prop_assert_eq!(s, o);
            Ok(())
        }
        (Err(_), Err(_), Err(_)) => Ok(()),
        (o, s, b) => Err(TestCaseError::fail(format!(
            "disagree on failing: oracle {o:?} / string {s:?} / bytes {b:?}"
        ))),
    }
}

#[derive(Serialize, Debug, Clone)]
enum E {
    U,
    N(f64),
    T(i8, Option<f32>),
    S { a: Vec<u16>, b: String },
    Nested(Box<Inner>),
    Unit(Unit),
}

#[derive(Serialize, Debug, Clone)]
struct Unit;

#[derive(Serialize, Debug, Clone)]
struct Newt(i64);

#[derive(Serialize, Debug, Clone)]
struct Ts(u8, f64);

#[derive(Serialize, Debug, Clone)]
struct Inner {
    x: f64,
    tag: char,
    m: BTreeMap<i64, f64>,
    t: (Ts, Newt, Unit),
}

#[derive(Serialize, Debug, Clone)]
struct Args {
    a: f64,
    b: Vec<Inner>,
    c: BTreeMap<String, (f32, i128)>,
    d: Option<Newt>,
    e: E,
    f: u128,
    g: Bytes,
    h: (),
    i: BTreeMap<Ts, E>,
}

/// A byte string (`serialize_bytes`), as `serde_bytes` gives.
#[derive(Debug, Clone, PartialEq, PartialOrd, Eq, Ord)]
struct Bytes(Vec<u8>);
impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

// A BTreeMap key needs Ord: a total order on the float's bits (only to
// build the map in the test; the key sorts entries by their encoding).
impl PartialEq for Ts {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o).is_eq()
    }
}
impl Eq for Ts {}
impl PartialOrd for Ts {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ts {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0, self.1.to_bits()).cmp(&(o.0, o.1.to_bits()))
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[\\\\\"\n\r\t\0\u{1}\u{7f}aé😀]{0,8}",
        ".{30,40}"
    ]
}

fn ts() -> impl Strategy<Value = Ts> {
    (any::<u8>(), special_f64()).prop_map(|(a, b)| Ts(a, b))
}

fn inner() -> impl Strategy<Value = Inner> {
    (
        special_f64(),
        any::<char>(),
        proptest::collection::btree_map(any::<i64>(), special_f64(), 0..5),
        (ts(), any::<i64>()),
    )
        .prop_map(|(x, tag, m, (t, n))| Inner {
            x,
            tag,
            m,
            t: (t, Newt(n), Unit),
        })
}

fn e() -> impl Strategy<Value = E> {
    prop_oneof![
        Just(E::U),
        special_f64().prop_map(E::N),
        (any::<i8>(), proptest::option::of(any::<f32>())).prop_map(|(a, b)| E::T(a, b)),
        (proptest::collection::vec(any::<u16>(), 0..20), text()).prop_map(|(a, b)| E::S { a, b }),
        inner().prop_map(|i| E::Nested(Box::new(i))),
        Just(E::Unit(Unit)),
    ]
}

fn args() -> impl Strategy<Value = Args> {
    (
        special_f64(),
        proptest::collection::vec(inner(), 0..3),
        proptest::collection::btree_map(text(), (any::<f32>(), any::<i128>()), 0..4),
        proptest::option::of(any::<i64>().prop_map(Newt)),
        e(),
        any::<u128>(),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes),
        proptest::collection::btree_map(ts(), e(), 0..3),
    )
        .prop_map(|(a, b, c, d, e, f, g, i)| Args {
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            h: (),
            i,
        })
}

fn config() -> impl Strategy<Value = KeyConfig> {
    (
        any::<bool>(),
        proptest::option::of(-3..4_i32),
        any::<bool>(),
        proptest::option::of(0..4_usize),
    )
        .prop_map(|(typed, tol, deep, ignore)| KeyConfig {
            names: vec![],
            ignore: ignore.into_iter().map(Ignore::Index).collect(),
            tol,
            deep,
            typed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_string_keymap(
        a in args(),
        c in config(),
        i in any::<i64>(),
        x in special_f64(),
        s in text(),
        ch in any::<char>(),
        o in proptest::option::of(any::<u32>()),
        v in proptest::collection::vec(any::<i16>(), 0..40),
        nested in (any::<u8>(), (special_f64(), (text(), any::<bool>()))),
        set in proptest::collection::btree_set(any::<i32>(), 0..20),
    ) {
        check(&a, &c)?;
        check(&(i, x, s.clone()), &c)?;
        check(&(ch, o, v.clone(), nested.clone()), &c)?;
        check(&(a.e.clone(), a.i.clone(), a.g.clone(), set.clone()), &c)?;
        check(&a.b, &c)?;
        check(&a.e, &c)?;
        check(&x, &c)?;
        check(&s, &c)?;
        check(&(), &c)?;
        check(&(a.d.clone(),), &c)?;
        check(&Ts(i as u8, x), &c)?;
        check(&a.b.first(), &c)?;
        check(&BTreeSet::from([s]), &c)?;
    }

    #[test]
    fn random_bytes_do_not_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = describe_args(&b);
        // Also behind a valid header, so the value renderer sees them.
        let mut k = vec![0x92, 0x01, 0x91];
        k.extend_from_slice(&b);
        let _ = describe_args(&k);
    }

    #[test]
    fn damaged_keys_do_not_panic(
        a in args(),
        c in config(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let b = encode_args(&a, &c).unwrap();
        prop_assert!(describe_args(&b[..cut.index(b.len())]).is_err(), "a strict prefix");
        let mut d = b.clone();
        d[flip.index(b.len())] = byte;
        let _ = describe_args(&d);
        d.push(0);
        let _ = describe_args(&d);
    }
}

fn reason(b: &[u8]) -> String {
    match describe_args(b) {
        Err(Error::Corrupt { location, reason }) => {
            assert_eq!(location, "encoded arguments");
            reason
        }
        other => panic!("{b:02x?}: {other:?}"),
    }
}

#[test]
fn refuses_what_is_not_a_canonical_key() {
    assert!(reason(&[]).contains("truncated"));
    assert!(reason(&[0x92, 0x02, 0x90]).contains("schema version 2"));
    assert!(reason(&[0x92, 0x01, 0x90, 0x00]).contains("trailing"));
    assert!(reason(&[0x92, 0x01, 0x91]).contains("truncated"));
    // 5 as uint8, "" as str8, [] as array16: not the smallest forms.
    assert!(reason(&[0x92, 0x01, 0x91, 0xcc, 0x05]).contains("smallest"));
    assert!(reason(&[0x92, 0x01, 0x91, 0xd9, 0x00]).contains("smallest"));
    assert!(reason(&[0x92, 0x01, 0x91, 0xdc, 0x00, 0x00]).contains("smallest"));
    // A non-canonical NaN, f32, unknown ext type 9, a tuple marker as a value.
    let other_nan = [0x92, 0x01, 0x91, 0xcb, 0xff, 0xf8, 0, 0, 0, 0, 0, 1];
    assert!(reason(&other_nan).contains("canonical"));
    assert!(reason(&[0x92, 0x01, 0x91, 0xca, 0, 0, 0, 0]).contains("32-bit"));
    assert!(reason(&[0x92, 0x01, 0x91, 0xd4, 0x09, 0x00]).contains("unknown ext"));
    assert!(reason(&[0x92, 0x01, 0x91, 0xd4, 0x01, 0x00]).contains("out of place"));
    // {2: nil, 1: nil}: out of order.
    assert!(reason(&[0x92, 0x01, 0x91, 0x82, 0x02, 0xc0, 0x01, 0xc0]).contains("order"));
    // A struct marker opening an array of 2.
    assert!(reason(&[0x92, 0x01, 0x91, 0x92, 0xd4, 0x02, 0x00, 0x80]).contains("opens"));
    // Invalid UTF-8.
    assert!(reason(&[0x92, 0x01, 0x91, 0xa1, 0xff]).contains("UTF-8"));
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let mut k = vec![0x92, 0x01, 0x91];
    k.extend(std::iter::repeat_n(0x91, 100_000));
    k.push(0xc0);
    assert!(reason(&k).contains("deeper"));
    // Within the limit it renders.
    let depth = MAX_DEPTH - 1;
    let mut k = vec![0x92, 0x01, 0x91];
    k.extend(std::iter::repeat_n(0x91, depth));
    k.push(0xc0);
    let expected = format!("({}None{},)", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(describe_args(&k).unwrap(), expected);
}

#[test]
fn golden() {
    let plain = KeyConfig::default();
    let d = |b: Vec<u8>| describe_args(&b).unwrap();
    assert_eq!(d(encode_args(&(), &plain).unwrap()), "()");
    assert_eq!(
        d(encode_args(&(Bytes(vec![b'a', 0, 255]), 'c', -40_i64, 300_u16), &plain).unwrap()),
        r#"(b"a\x00\xff", "c", -40, 300)"#
    );
    let typed = KeyConfig {
        typed: true,
        ..KeyConfig::default()
    };
    assert_eq!(
        d(encode_args(&(Unit, Newt(3), Ts(1, 2.0), E::U, None::<u8>), &typed).unwrap()),
        "(Unit, Newt(i64(3)), Ts(u8(1), f64(2.0)), E::U, None)"
    );
    assert_eq!(
        d(encode_args(&Ts(1, 2.0), &typed).unwrap()),
        "Ts(u8(1), f64(2.0))"
    );
}

#[test]
fn keys_equal_after_rounding_are_accepted() {
    // Deep rounding makes both keys Ts(1, 1.0): the entries tie on the
    // key and are ordered by value, so the order check is not strict.
    let c = KeyConfig {
        tol: Some(1),
        deep: true,
        ..KeyConfig::default()
    };
    check(&(colliding(),), &c).unwrap();
    assert_eq!(
        describe_args(&encode_args(&(colliding(),), &c).unwrap()).unwrap(),
        "({(1, 1.0): 3, (1, 1.0): 7},)"
    );
}

fn colliding() -> BTreeMap<Ts, u8> {
    [(Ts(1, 1.01), 7), (Ts(1, 1.02), 3)].into()
}

#[test]
fn serial_keys_describe_too() {
    let c = KeyConfig::default();
    let key = SerialKeymap.key(&(1, "x"), &c).unwrap();
    assert_eq!(describe_args(&key).unwrap(), r#"(1, "x")"#);
    // HashKeymap keeps the same bytes next to its digest.
    let kept = HashKeymap.probe(&(1, "x"), &c, <[u8]>::to_vec).unwrap();
    assert_eq!(kept, key);
}

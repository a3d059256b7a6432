//! The fast connection: the one SQLite connection a driver keeps out of its
//! pool, with its lookup statements held prepared.
//!
//! rusqlite's statement cache costs a lookup about 1,100 instructions (it
//! hashes the SQL text twice: once to take the statement, once to put it
//! back), about a twentieth of a reload from the archive. The statements
//! held here are found by comparing the text instead. They borrow the
//! connection, so the two live together in a [`self_cell`].

use rusqlite::{Connection, Statement};
use self_cell::self_cell;

/// Lookup statements held per fast connection: a few tables' worth.
const HELD: usize = 8;

/// A prepared statement and the SQL it was prepared from.
pub(crate) struct Held<'conn> {
    sql: Box<str>,
    statement: Statement<'conn>,
}

/// The statements held on one connection, most recently prepared last.
type HeldStatements<'conn> = Vec<Held<'conn>>;

self_cell!(
    /// A connection and the statements it holds prepared.
    pub(crate) struct FastConn {
        owner: Connection,
        #[covariant]
        dependent: HeldStatements,
    }
);

// SAFETY: a `Connection` is `Send`; what keeps `FastConn` from being `Send`
// automatically is the statements, which borrow it (`&Connection` is not
// `Send` because `Connection` is not `Sync`). They are reached only through
// `with_held` on `&mut FastConn`, together with their connection, so moving
// the whole to another thread moves every user of the connection with it:
// it is still used by one thread at a time, as SQLite requires of a
// connection (the driver keeps it behind a mutex).
#[allow(unsafe_code)]
unsafe impl Send for FastConn {}

impl FastConn {
    /// Keeps `conn`, with no statement prepared yet.
    pub(crate) fn hold(conn: Connection) -> Self {
        FastConn::new(conn, |_| Vec::new())
    }

    /// The connection (for statements not held here).
    pub(crate) fn conn(&self) -> &Connection {
        self.borrow_owner()
    }

    /// Runs `f` on the statement prepared from `sql`, preparing it first
    /// unless it is held already (the oldest of [`HELD`] is let go).
    pub(crate) fn with_held<R>(
        &mut self,
        sql: &str,
        f: impl FnOnce(&mut Statement<'_>) -> rusqlite::Result<R>,
    ) -> rusqlite::Result<R> {
        self.with_dependent_mut(|conn, held| {
            let index = match held.iter().position(|h| &*h.sql == sql) {
                Some(index) => index,
                None => {
                    let statement = conn.prepare(sql)?;
                    if held.len() == HELD {
                        held.remove(0);
                    }
                    held.push(Held {
                        sql: sql.into(),
                        statement,
                    });
                    held.len() - 1
                }
            };
            f(&mut held[index].statement)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> FastConn {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        conn.execute_batch("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
            .unwrap();
        FastConn::hold(conn)
    }

    fn lookup(fast: &mut FastConn, sql: &str, k: i64) -> Option<String> {
        fast.with_held(sql, |s| {
            let mut rows = s.query([k])?;
            rows.next()?.map(|r| r.get(0)).transpose()
        })
        .unwrap()
    }

    #[test]
    fn a_held_statement_answers_like_a_fresh_one_on_another_thread_too() {
        let mut fast = table();
        let sql = "SELECT v FROM t WHERE k = ?1";
        assert_eq!(lookup(&mut fast, sql, 1).as_deref(), Some("one"));
        // Moved to another thread with its statement (the `Send` above).
        let mut fast = std::thread::spawn(move || {
            assert_eq!(lookup(&mut fast, sql, 2).as_deref(), Some("two"));
            fast
        })
        .join()
        .unwrap();
        fast.conn()
            .execute("UPDATE t SET v = 'uno' WHERE k = 1", [])
            .unwrap();
        assert_eq!(lookup(&mut fast, sql, 1).as_deref(), Some("uno"));
        assert_eq!(lookup(&mut fast, sql, 3), None);
    }

    #[test]
    fn statements_past_the_limit_let_the_oldest_go() {
        let mut fast = table();
        for i in 0..HELD + 3 {
            let sql = format!("SELECT v FROM t WHERE k = ?1 AND {i} = {i}");
            assert_eq!(lookup(&mut fast, &sql, 2).as_deref(), Some("two"));
        }
        let held = fast.with_dependent_mut(|_, held| {
            held.iter().map(|h| h.sql.to_string()).collect::<Vec<_>>()
        });
        assert_eq!(held.len(), HELD);
        assert!(held[0].ends_with("3 = 3"), "{held:?}");
        // A bad statement is an error, and nothing is held for it.
        let err = fast.with_held("SELECT nothing FROM nowhere", |s| s.exists([]));
        assert!(err.is_err());
        assert_eq!(fast.borrow_dependent().len(), HELD);
    }
}

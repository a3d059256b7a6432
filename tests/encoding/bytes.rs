//! The encoder must give exactly the oracle's bytes, or its error, on fixed
//! shapes and random arguments.

use klepto::key::encode::encode_args;
use klepto::key::{Ignore, KeyConfig};

use super::oracle::positions::{encode_positions_into, positions};
use super::special_f64;
use proptest::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

type Outcome = Result<Vec<u8>, String>;

/// (encoder bytes or error, reference bytes or error).
fn both<A: Serialize + ?Sized>(a: &A, c: &KeyConfig) -> (Outcome, Outcome) {
    let fast = encode_args(a, c).map_err(|e| e.to_string());
    let mut slow = Vec::new();
    let slow = positions(a, c)
        .and_then(|p| encode_positions_into(&p, &mut slow))
        .map(|()| slow)
        .map_err(|e| e.to_string());
    (fast, slow)
}

/// The encoder agrees with the reference: the same bytes, or the same error.
fn check<A: Serialize + ?Sized>(a: &A, c: &KeyConfig) {
    let (fast, slow) = both(a, c);
    assert_eq!(
        fast, slow,
        "the encoder differs from the reference under {c:?}"
    );
}

fn configs() -> Vec<KeyConfig> {
    let mut out = Vec::new();
    for typed in [false, true] {
        for tol in [None, Some(0), Some(1), Some(-1)] {
            for deep in [false, true] {
                for ignore in [
                    vec![],
                    vec![Ignore::Index(0)],
                    vec![Ignore::Index(1), Ignore::Name("b".into())],
                    vec![Ignore::Index(9)],
                    vec![Ignore::Name("nope".into())],
                ] {
                    out.push(KeyConfig {
                        names: vec![],
                        ignore,
                        tol,
                        deep,
                        typed,
                    });
                }
            }
        }
    }
    out.push(KeyConfig {
        names: vec!["x".into(), "y".into(), "z".into()],
        ignore: vec!["z".into()],
        ..KeyConfig::default()
    });
    out.push(KeyConfig {
        names: vec!["x".into(), "y".into()],
        ignore: vec!["y".into(), "x".into()],
        ..KeyConfig::default()
    });
    out
}

#[derive(Serialize, Debug, Clone)]
enum E {
    U,
    N(f64),
    T(i8, Option<f32>),
    S { a: Vec<u16>, b: String },
}

#[derive(Serialize, Debug, Clone)]
struct Newt(f32);

#[derive(Serialize, Debug, Clone)]
struct Ts(u8, f64);

#[derive(Serialize, Debug, Clone)]
struct Unit;

#[derive(Serialize, Debug, Clone)]
struct Inner {
    x: f64,
    tag: char,
    m: BTreeMap<i64, f64>,
    e: E,
}

#[derive(Serialize, Debug, Clone)]
struct Args {
    a: f64,
    b: Vec<Inner>,
    c: HashMap<String, (f32, i128)>,
    d: Option<Newt>,
    e: Ts,
    f: u128,
    g: bool,
    h: (),
    i: Unit,
    #[serde(skip_serializing_if = "Option::is_none")]
    j: Option<u8>,
}

struct Bytes(Vec<u8>);
impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// A sequence of unknown length, and one that declares a wrong length.
struct Lying(Vec<f64>, Option<usize>);
impl Serialize for Lying {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut q = s.serialize_seq(self.1)?;
        for x in &self.0 {
            q.serialize_element(x)?;
        }
        q.end()
    }
}

struct FloatKeys(Vec<(f64, u8)>);
impl Serialize for FloatKeys {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn e_strategy() -> impl Strategy<Value = E> {
    prop_oneof![
        Just(E::U),
        special_f64().prop_map(E::N),
        (any::<i8>(), proptest::option::of(any::<f32>())).prop_map(|(a, b)| E::T(a, b)),
        (proptest::collection::vec(any::<u16>(), 0..20), ".{0,40}")
            .prop_map(|(a, b)| E::S { a, b }),
    ]
}

fn inner_strategy() -> impl Strategy<Value = Inner> {
    (
        special_f64(),
        any::<char>(),
        proptest::collection::btree_map(any::<i64>(), special_f64(), 0..5),
        e_strategy(),
    )
        .prop_map(|(x, tag, m, e)| Inner { x, tag, m, e })
}

fn args_strategy() -> impl Strategy<Value = Args> {
    (
        special_f64(),
        proptest::collection::vec(inner_strategy(), 0..4),
        proptest::collection::hash_map(".{0,8}", (any::<f32>(), any::<i128>()), 0..6),
        proptest::option::of(any::<f32>().prop_map(Newt)),
        (any::<u8>(), special_f64()).prop_map(|(a, b)| Ts(a, b)),
        any::<u128>(),
        any::<bool>(),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(a, b, c, d, e, f, g, j)| Args {
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            h: (),
            i: Unit,
            j,
        })
}

#[test]
fn fixed_shapes_agree() {
    let inner = Inner {
        x: 2.5,
        tag: 'é',
        m: [(1, 0.25), (-3, 7.5)].into_iter().collect(),
        e: E::T(-4, Some(1.5)),
    };
    for c in configs() {
        check(&(1_u8, 2.5_f64, "x"), &c);
        check(&(), &c);
        check(&7_u64, &c);
        check(&2.5_f64, &c);
        check(&Some(2.5_f64), &c);
        check(&None::<f64>, &c);
        check(&Some((1_u8, 2.5_f64)), &c);
        check(&Newt(2.5), &c);
        check(&Ts(3, 2.5), &c);
        check(&Unit, &c);
        check(&E::U, &c);
        check(&E::N(2.5), &c);
        check(&E::T(1, None), &c);
        check(
            &E::S {
                a: vec![1, 2],
                b: "q".into(),
            },
            &c,
        );
        check(&vec![2.5_f64, 3.5], &c);
        check(&(2.5_f64, vec![2.5_f64, 3.5], inner.clone()), &c);
        check(&inner, &c);
        check(&[1.5_f64, 2.5, 3.5], &c);
        check(&(i128::MIN, u128::MAX, -1_i64, u64::MAX), &c);
        check(&(Bytes(vec![0, 1, 255]), Bytes(vec![7; 300])), &c);
        check(&Lying(vec![0.5, 1.5, 2.5], None), &c);
        check(&(1_u8, Lying(vec![0.5; 20], Some(3))), &c);
        check(&(Lying(vec![0.5; 3], Some(70_000)),), &c);
        check(
            &FloatKeys(vec![(1.4, 1), (0.6, 2), (-0.0, 3), (0.0, 4)]),
            &c,
        );
        check(&("a".repeat(40), "b".repeat(300), "c".repeat(70_000)), &c);
        check(&(vec![(); 3], Some(()), ((),)), &c);
        check(&(0..20).collect::<Vec<u32>>(), &c);
        let hm: HashMap<String, Vec<f64>> = (0..20)
            .map(|i| (format!("k{i}"), vec![f64::from(i) + 0.5]))
            .collect();
        check(&hm, &c);
        check(&(1, hm), &c);
    }
}

#[test]
fn plain_and_configured_keys_encode() {
    let c = KeyConfig::default();
    assert!(encode_args(&(1_u64, 2.5_f64), &c).is_ok());
    let c = KeyConfig {
        ignore: vec![1.into()],
        tol: Some(2),
        typed: true,
        deep: true,
        ..c
    };
    assert!(encode_args(&(1_u64, 2.5_f64), &c).is_ok());
}

#[test]
fn user_errors_are_the_reference_error() {
    struct Bad;
    impl Serialize for Bad {
        fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no thanks"))
        }
    }
    let (fast, slow) = both(&(1, Bad), &KeyConfig::default());
    assert_eq!(fast, slow);
    assert!(fast.unwrap_err().contains("no thanks"));
}

#[test]
fn more_than_64_masks_are_exact() {
    let args: Vec<u8> = (0..100).collect();
    let tuple = (1_u8, 2_u8, 3_u8);
    for n in [63, 64, 65, 70, 130] {
        // Many masks, all on real positions of a struct-free tuple, or one
        // out of range at the end.
        let mut ignore: Vec<Ignore> = (0..n).map(|i| Ignore::Index(i % 3)).collect();
        check(
            &tuple,
            &KeyConfig {
                ignore: ignore.clone(),
                ..KeyConfig::default()
            },
        );
        ignore.push(Ignore::Index(7));
        check(
            &tuple,
            &KeyConfig {
                ignore: ignore.clone(),
                ..KeyConfig::default()
            },
        );
        ignore.insert(0, "nope".into());
        check(
            &tuple,
            &KeyConfig {
                ignore,
                ..KeyConfig::default()
            },
        );
        let ignore: Vec<Ignore> = (0..n).map(|_| Ignore::Index(0)).collect();
        check(
            &args,
            &KeyConfig {
                ignore,
                ..KeyConfig::default()
            },
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_args_agree(
        args in args_strategy(),
        typed in any::<bool>(),
        tol in proptest::option::of(-3..4_i32),
        deep in any::<bool>(),
        ignore in proptest::collection::vec(0..12_usize, 0..3),
        by_name in proptest::collection::vec(prop_oneof![Just("a"), Just("c"), Just("j"), Just("x")], 0..2),
    ) {
        let mut ignore: Vec<Ignore> = ignore.into_iter().map(Ignore::Index).collect();
        ignore.extend(by_name.into_iter().map(Ignore::from));
        let c = KeyConfig { names: vec![], ignore, tol, deep, typed };
        check(&args, &c);
        check(&(args.a, args.b.clone(), args.e.clone()), &c);
        check(&args.b, &c);
        check(&args.c, &c);
    }
}

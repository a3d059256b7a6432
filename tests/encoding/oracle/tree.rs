//! The reference path's last step: the canonical bytes of a [`Value`] tree
//! (the streaming encoder in [`stream`](super::stream) must write the same
//! bytes; tests compare the two).

use rmp::encode as mp;

use super::float::write_float;
use super::format::{
    len32, write_bin, write_err, write_int, write_marker, write_str, write_struct_header,
    write_typed_header, write_u128, write_variant_header, EXT_IGNORED, EXT_TUPLE,
};
use super::key_error;
use super::value::Value;
use klepto::Result;

/// Appends the canonical encoding of one value to `buf`.
pub fn encode_value_into(v: &Value, buf: &mut Vec<u8>) -> Result<()> {
    match v {
        Value::Null => mp::write_nil(buf).map_err(write_err)?,
        Value::Ignored => write_marker(buf, EXT_IGNORED),
        Value::Bool(b) => mp::write_bool(buf, *b).map_err(write_err)?,
        Value::Int(i) => write_int(buf, *i)?,
        Value::U128(u) => write_u128(buf, *u)?,
        Value::Float(x) => write_float(buf, *x)?,
        Value::Str(s) => write_str(buf, s)?,
        Value::Bytes(b) => write_bin(buf, b)?,
        Value::Seq(items) => {
            mp::write_array_len(buf, len32(items.len(), "sequence")?).map_err(write_err)?;
            for item in items {
                encode_value_into(item, buf)?;
            }
        }
        Value::Tuple(items) => {
            let n = len32(items.len(), "tuple")?
                .checked_add(1)
                .ok_or_else(|| key_error("tuple too long for a key"))?;
            mp::write_array_len(buf, n).map_err(write_err)?;
            write_marker(buf, EXT_TUPLE);
            for item in items {
                encode_value_into(item, buf)?;
            }
        }
        Value::Map(entries) => {
            mp::write_map_len(buf, len32(entries.len(), "map")?).map_err(write_err)?;
            for (k, v) in entries {
                encode_value_into(k, buf)?;
                encode_value_into(v, buf)?;
            }
        }
        Value::Struct { name, fields } => {
            write_struct_header(buf, *name)?;
            mp::write_map_len(buf, len32(fields.len(), "struct")?).map_err(write_err)?;
            for (k, v) in fields {
                write_str(buf, k)?;
                encode_value_into(v, buf)?;
            }
        }
        Value::Variant {
            name,
            variant,
            payload,
        } => {
            write_variant_header(buf, *name, variant)?;
            encode_value_into(payload, buf)?;
        }
        Value::Typed { ty, value } => {
            write_typed_header(buf, ty)?;
            encode_value_into(value, buf)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::format::{EXT_I128, EXT_U128};
    use super::super::positions::{encode_positions, Positions};
    use super::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut b = Vec::new();
        encode_value_into(v, &mut b).unwrap();
        b
    }

    #[test]
    fn smallest_integers() {
        assert_eq!(enc(&Value::Int(0)), [0x00]);
        assert_eq!(enc(&Value::Int(127)), [0x7f]);
        assert_eq!(enc(&Value::Int(128)), [0xcc, 0x80]);
        assert_eq!(enc(&Value::Int(256)), [0xcd, 0x01, 0x00]);
        assert_eq!(enc(&Value::Int(-1)), [0xff]);
        assert_eq!(enc(&Value::Int(-32)), [0xe0]);
        assert_eq!(enc(&Value::Int(-33)), [0xd0, 0xdf]);
        assert_eq!(enc(&Value::Int(u64::MAX.into()))[0], 0xcf);
        assert_eq!(enc(&Value::Int(i64::MIN.into()))[0], 0xd3);
        let big = enc(&Value::Int(i128::from(u64::MAX) + 1));
        assert_eq!(&big[..2], [0xd8, EXT_U128 as u8]);
        assert_eq!(big.len(), 18);
        let neg = enc(&Value::Int(i128::from(i64::MIN) - 1));
        assert_eq!(&neg[..2], [0xd8, EXT_I128 as u8]);
        assert_eq!(&neg[2..], (i128::from(i64::MIN) - 1).to_be_bytes());
        assert_eq!(
            enc(&Value::U128(u128::MAX)),
            [[0xd8, 6].as_slice(), &[0xff; 16]].concat()
        );
        // A non-canonical U128 that fits still encodes as the small int.
        assert_eq!(enc(&Value::U128(5)), [0x05]);
    }

    #[test]
    fn floats_always_f64() {
        assert_eq!(
            enc(&Value::Float(2.5)),
            [0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0]
        );
        assert_ne!(enc(&Value::Float(-0.0)), enc(&Value::Float(0.0)));
        assert_eq!(
            enc(&Value::Float(f64::from_bits(0x7ff0_0000_0000_0001))),
            [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(enc(&Value::Null), [0xc0]);
        assert_eq!(enc(&Value::Ignored), [0xd4, 0x00, 0x00]);
        assert_eq!(enc(&Value::Str("x".into())), [0xa1, b'x']);
        assert_eq!(enc(&Value::Bytes(vec![1, 2])), [0xc4, 2, 1, 2]);
        assert_eq!(
            enc(&Value::Seq(vec![Value::Int(1), Value::Int(2)])),
            [0x92, 1, 2]
        );
        assert_eq!(
            enc(&Value::Tuple(vec![Value::Int(1), Value::Int(2)])),
            [0x93, 0xd4, 1, 0, 1, 2]
        );
        assert_eq!(
            enc(&Value::Struct {
                name: None,
                fields: vec![("a", Value::Bool(true))]
            }),
            [0x93, 0xd4, 2, 0, 0xc0, 0x81, 0xa1, b'a', 0xc3]
        );
        assert_eq!(
            enc(&Value::Variant {
                name: Some("E"),
                variant: "V",
                payload: Box::new(Value::Null)
            }),
            [0x94, 0xd4, 3, 0, 0xa1, b'E', 0xa1, b'V', 0xc0]
        );
        assert_eq!(
            enc(&Value::Typed {
                ty: "i32",
                value: Box::new(Value::Int(3))
            }),
            [0x93, 0xd4, 4, 0, 0xa3, b'i', b'3', b'2', 3]
        );
        let long = "y".repeat(40);
        let e = enc(&Value::Str(long.clone()));
        assert_eq!(&e[..2], [0xd9, 40]);
    }

    #[test]
    fn whole_key_matches_module_doc() {
        let p = Positions::from_values(vec![
            Value::Int(1),
            Value::Float(2.5),
            Value::Str("x".into()),
        ]);
        assert_eq!(
            encode_positions(&p).unwrap(),
            [0x92, 0x01, 0x93, 0x01, 0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0, 0xa1, 0x78]
        );
    }
}

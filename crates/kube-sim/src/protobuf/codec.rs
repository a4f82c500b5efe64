//! Translation between the JSON form of an object (what kube-sim stores) and
//! its protobuf message, driven by the message table ([`super::schema`]).
//!
//! Encoding writes the fields present in the JSON, in tag order, as Go does.
//! Decoding follows Go's JSON view of what a Go client encoded: a Go encoder
//! writes every non-pointer field, zero or not, so empty strings and unset
//! timestamps are dropped (Go would omit them from JSON), and so are the zero
//! values of the few non-pointer numbers and flags whose zero means "unset"
//! (`NOT_POINTERS`). Zeros of pointer fields (`replicas: 0`,
//! `automountServiceAccountToken: false`) are kept: they are what was asked.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::schema::{Field, Label, Schema, Special, Ty};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(m: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(m.into()))
}

/// Non-pointer integer and boolean fields of the built-in types whose zero Go
/// writes on the wire but omits from JSON (`omitempty`): decoding drops them so
/// an object sent as protobuf reads back as the same object sent as JSON.
const NOT_POINTERS: &[&str] = &[
    "generation",
    "hostPort",
    "nodePort",
    "healthCheckNodePort",
    "minReadySeconds",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "stdin",
    "stdinOnce",
    "tty",
    "readOnly",
    "paused",
    "publishNotReadyAddresses",
    "unschedulable",
    "globalDefault",
    "initialDelaySeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "count",
    "observedGeneration",
    "retryAfterSeconds",
];

/// The same for status counters, per message (`replicas` is a pointer in a
/// DeploymentSpec but not in a DeploymentStatus).
const NOT_POINTERS_IN: &[(&str, &[&str])] = &[
    ("DeploymentStatus", &["replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"]),
    ("ReplicaSetStatus", &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"]),
    ("StatefulSetStatus", &["readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"]),
    ("DaemonSetStatus", &["numberAvailable", "numberUnavailable", "updatedNumberScheduled"]),
    ("JobStatus", &["active", "succeeded", "failed"]),
];

fn not_pointer(message: &str, field: &str) -> bool {
    if NOT_POINTERS.contains(&field) {
        return true;
    }
    let short = message.rsplit('.').next().unwrap_or_default();
    NOT_POINTERS_IN.iter().any(|(m, fs)| *m == short && fs.contains(&field))
}

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

// ----- encoding -------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wire));
}

fn put_bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    put_key(out, tag, WIRE_LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Write a length-delimited field whose content `f` appends to `out`: one byte
/// is reserved for the length and the content shifted when it needs more.
fn put_nested(out: &mut Vec<u8>, tag: u32, f: impl FnOnce(&mut Vec<u8>)) {
    put_key(out, tag, WIRE_LEN);
    let at = out.len();
    out.push(0);
    f(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
        return;
    }
    let mut prefix = Vec::with_capacity(5);
    put_varint(&mut prefix, len as u64);
    let extra = prefix.len() - 1;
    out.extend(std::iter::repeat_n(0, extra));
    out.copy_within(at + 1..at + 1 + len, at + 1 + extra);
    out[at..at + prefix.len()].copy_from_slice(&prefix);
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn scalar_string(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// Append the message `msg` for the JSON value `v` (its fields, no envelope).
pub fn encode_message(schema: &Schema, msg: usize, v: &Value, out: &mut Vec<u8>) {
    let m = schema.message(msg);
    match m.special {
        Special::None => {}
        special => return encode_special(schema, special, msg, v, out),
    }
    let Some(obj) = v.as_object() else { return };
    for f in &m.fields {
        if f.inline() {
            if let Ty::Message(idx) = f.ty {
                put_nested(out, f.tag, |o| encode_message(schema, idx, v, o));
            }
            continue;
        }
        let Some(val) = obj.get(&*f.json) else { continue };
        encode_field(schema, f, val, out);
    }
}

fn encode_field(schema: &Schema, f: &Field, val: &Value, out: &mut Vec<u8>) {
    match (f.label, val) {
        (_, Value::Null) => {}
        (Label::Repeated, Value::Array(items)) => {
            for item in items {
                encode_value(schema, f.tag, f.ty, item, out);
            }
        }
        (Label::Map, Value::Object(entries)) => {
            for (k, item) in entries {
                if item.is_null() && f.ty != Ty::String {
                    continue;
                }
                put_nested(out, f.tag, |o| {
                    put_bytes(o, 1, k.as_bytes());
                    encode_value(schema, 2, f.ty, item, o);
                });
            }
        }
        (Label::Map, _) => {}
        _ => encode_value(schema, f.tag, f.ty, val, out),
    }
}

fn encode_value(schema: &Schema, tag: u32, ty: Ty, v: &Value, out: &mut Vec<u8>) {
    match ty {
        Ty::String => {
            if let Some(s) = scalar_string(v) {
                put_bytes(out, tag, s.as_bytes());
            } else if v.is_null() {
                put_bytes(out, tag, b"");
            }
        }
        Ty::Bytes => {
            if let Some(s) = v.as_str() {
                match base64::engine::general_purpose::STANDARD.decode(s) {
                    Ok(b) => put_bytes(out, tag, &b),
                    Err(_) => put_bytes(out, tag, s.as_bytes()),
                }
            }
        }
        Ty::Bool => {
            if let Some(b) = v.as_bool() {
                put_key(out, tag, WIRE_VARINT);
                put_varint(out, u64::from(b));
            }
        }
        Ty::Int32 | Ty::Int64 => {
            if let Some(i) = as_i64(v) {
                put_key(out, tag, WIRE_VARINT);
                let i = if ty == Ty::Int32 { i64::from(i as i32) } else { i };
                put_varint(out, i as u64);
            }
        }
        Ty::Double => {
            if let Some(d) = v.as_f64() {
                put_key(out, tag, WIRE_FIXED64);
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
        Ty::Message(idx) => put_nested(out, tag, |o| encode_message(schema, idx, v, o)),
    }
}

fn encode_special(schema: &Schema, special: Special, msg: usize, v: &Value, out: &mut Vec<u8>) {
    match special {
        Special::None => {}
        Special::Time | Special::MicroTime => {
            if let Some(t) = v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) {
                put_key(out, 1, WIRE_VARINT);
                put_varint(out, t.as_second() as u64);
                let nanos = t.subsec_nanosecond();
                if nanos != 0 {
                    put_key(out, 2, WIRE_VARINT);
                    put_varint(out, i64::from(nanos) as u64);
                }
            }
        }
        Special::Duration => {
            if let Some(n) = v.as_str().and_then(parse_go_duration) {
                put_key(out, 1, WIRE_VARINT);
                put_varint(out, n as u64);
            }
        }
        Special::Quantity => {
            if let Some(s) = scalar_string(v) {
                put_bytes(out, 1, s.as_bytes());
            }
        }
        Special::IntOrString => match v {
            Value::Number(_) => {
                put_key(out, 1, WIRE_VARINT);
                put_varint(out, 0);
                put_key(out, 2, WIRE_VARINT);
                put_varint(out, i64::from(as_i64(v).unwrap_or(0) as i32) as u64);
            }
            other => {
                put_key(out, 1, WIRE_VARINT);
                put_varint(out, 1);
                put_bytes(out, 3, scalar_string(other).unwrap_or_default().as_bytes());
            }
        },
        Special::RawExtension | Special::RawJson => {
            put_bytes(out, 1, &serde_json::to_vec(v).unwrap_or_default());
        }
        Special::PropsOrArray => {
            let props = props_message(schema, msg, 1);
            match (v, props) {
                (Value::Array(items), Some(p)) => {
                    for item in items {
                        put_nested(out, 2, |o| encode_message(schema, p, item, o));
                    }
                }
                (_, Some(p)) => put_nested(out, 1, |o| encode_message(schema, p, v, o)),
                _ => {}
            }
        }
        Special::PropsOrBool => match (v, props_message(schema, msg, 2)) {
            (Value::Bool(b), _) => {
                put_key(out, 1, WIRE_VARINT);
                put_varint(out, u64::from(*b));
            }
            (_, Some(p)) => {
                put_key(out, 1, WIRE_VARINT);
                put_varint(out, 1);
                put_nested(out, 2, |o| encode_message(schema, p, v, o));
            }
            _ => {}
        },
        Special::Items => {
            for item in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
                put_bytes(out, 1, item.as_bytes());
            }
        }
        Special::PropsOrStringArray => match (v, props_message(schema, msg, 1)) {
            (Value::Array(items), _) => {
                for s in items.iter().filter_map(Value::as_str) {
                    put_bytes(out, 2, s.as_bytes());
                }
            }
            (_, Some(p)) => put_nested(out, 1, |o| encode_message(schema, p, v, o)),
            _ => {}
        },
    }
}

fn props_message(schema: &Schema, msg: usize, tag: u32) -> Option<usize> {
    match schema.message(msg).by_tag(tag)?.ty {
        Ty::Message(p) => Some(p),
        _ => None,
    }
}

// ----- decoding -------------------------------------------------------------------

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(b) = self.buf.get(self.pos).copied() else { return err("unexpected EOF") };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        err("proto: integer overflow")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else { return err("unexpected EOF") };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        let n =
            usize::try_from(n).map_err(|_| DecodeError("proto: negative length found during unmarshaling".into()))?;
        self.take(n)
    }

    fn key(&mut self) -> Result<(u32, u8), DecodeError> {
        let k = self.varint()?;
        let tag = u32::try_from(k >> 3).map_err(|_| DecodeError("proto: illegal tag".into()))?;
        if tag == 0 {
            return err("proto: illegal tag 0 (wire type 0)");
        }
        Ok((tag, (k & 7) as u8))
    }

    fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
        match wire {
            WIRE_VARINT => self.varint().map(|_| ()),
            WIRE_FIXED64 => self.take(8).map(|_| ()),
            WIRE_LEN => self.bytes().map(|_| ()),
            WIRE_FIXED32 => self.take(4).map(|_| ()),
            w => err(format!("proto: illegal wireType {w}")),
        }
    }
}

/// How deep messages may nest (JSON schemas nest; a hostile body must not
/// exhaust the stack).
const MAX_DEPTH: usize = 64;

/// Decode a message into its JSON form.
pub fn decode_message(schema: &Schema, msg: usize, buf: &[u8]) -> Result<Value, DecodeError> {
    decode_at(schema, msg, buf, 0)
}

fn decode_at(schema: &Schema, msg: usize, buf: &[u8], depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return err("proto: message nested too deeply");
    }
    let m = schema.message(msg);
    if m.special != Special::None {
        return decode_special(schema, m.special, msg, buf, depth);
    }
    let mut obj = Map::new();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        let Some(f) = m.by_tag(tag) else {
            r.skip(wire)?;
            continue;
        };
        match f.label {
            Label::Map => {
                if wire != WIRE_LEN {
                    return err(format!("proto: wrong wireType = {wire} for field {}", f.json));
                }
                let entry = r.bytes()?;
                let (k, v) = decode_entry(schema, f, entry, depth)?;
                let map = obj.entry(f.json.to_string()).or_insert_with(|| Value::Object(Map::new()));
                if let Some(map) = map.as_object_mut() {
                    map.insert(k, v);
                }
            }
            Label::Repeated => {
                let list = obj.entry(f.json.to_string()).or_insert_with(|| Value::Array(Vec::new()));
                let Some(list) = list.as_array_mut() else { continue };
                if wire == WIRE_LEN && matches!(f.ty, Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Double) {
                    // A packed list of numbers.
                    let mut p = Reader::new(r.bytes()?);
                    let w = if f.ty == Ty::Double { WIRE_FIXED64 } else { WIRE_VARINT };
                    while !p.done() {
                        list.push(decode_scalar(schema, f, w, &mut p, depth)?);
                    }
                } else {
                    list.push(decode_scalar(schema, f, wire, &mut r, depth)?);
                }
            }
            Label::Optional if f.inline() => {
                if let Value::Object(inner) = decode_scalar(schema, f, wire, &mut r, depth)? {
                    obj.extend(inner);
                }
            }
            Label::Optional => {
                let v = decode_scalar(schema, f, wire, &mut r, depth)?;
                if keep(&m.name, f, &v) {
                    obj.insert(f.json.to_string(), v);
                } else {
                    obj.remove(&*f.json);
                }
            }
        }
    }
    Ok(Value::Object(obj))
}

/// Whether a decoded singular field shows in the JSON form (see the module doc).
fn keep(message: &str, f: &Field, v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Bool(false) => !not_pointer(message, &f.json),
        Value::Number(n) if n.as_i64() == Some(0) => !not_pointer(message, &f.json),
        _ => true,
    }
}

fn decode_entry(schema: &Schema, f: &Field, buf: &[u8], depth: usize) -> Result<(String, Value), DecodeError> {
    let mut r = Reader::new(buf);
    let mut key = String::new();
    let mut value = None;
    while !r.done() {
        let (tag, wire) = r.key()?;
        match (tag, wire) {
            (1, WIRE_LEN) => key = String::from_utf8_lossy(r.bytes()?).into_owned(),
            (2, _) => value = Some(decode_scalar(schema, f, wire, &mut r, depth)?),
            (_, w) => r.skip(w)?,
        }
    }
    let value = value.unwrap_or_else(|| match f.ty {
        Ty::String | Ty::Bytes => Value::String(String::new()),
        Ty::Message(m) if schema.message(m).special == Special::Quantity => Value::String("0".into()),
        Ty::Message(_) => Value::Object(Map::new()),
        Ty::Bool => Value::Bool(false),
        _ => Value::from(0),
    });
    Ok((key, value))
}

fn decode_scalar(schema: &Schema, f: &Field, wire: u8, r: &mut Reader<'_>, depth: usize) -> Result<Value, DecodeError> {
    let want = match f.ty {
        Ty::String | Ty::Bytes | Ty::Message(_) => WIRE_LEN,
        Ty::Double => WIRE_FIXED64,
        _ => WIRE_VARINT,
    };
    if wire != want {
        return err(format!("proto: wrong wireType = {wire} for field {}", f.json));
    }
    Ok(match f.ty {
        Ty::String => Value::String(String::from_utf8_lossy(r.bytes()?).into_owned()),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
        Ty::Bool => Value::Bool(r.varint()? != 0),
        Ty::Int32 => Value::from(r.varint()? as i32),
        Ty::Int64 => Value::from(r.varint()? as i64),
        Ty::Double => {
            let b = r.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Number::from_f64(f64::from_le_bytes(a)).map(Value::Number).unwrap_or(Value::Null)
        }
        Ty::Message(m) => decode_at(schema, m, r.bytes()?, depth + 1)?,
    })
}

/// The varint and the length-delimited fields of a small message, by tag.
type Fields<'a> = (Vec<(u32, u64)>, Vec<(u32, &'a [u8])>);

fn fields_of(buf: &[u8]) -> Result<Fields<'_>, DecodeError> {
    let mut r = Reader::new(buf);
    let (mut ints, mut blobs) = (Vec::new(), Vec::new());
    while !r.done() {
        let (tag, wire) = r.key()?;
        match wire {
            WIRE_VARINT => ints.push((tag, r.varint()?)),
            WIRE_LEN => blobs.push((tag, r.bytes()?)),
            w => r.skip(w)?,
        }
    }
    Ok((ints, blobs))
}

fn int_of(ints: &[(u32, u64)], tag: u32) -> Option<u64> {
    ints.iter().rev().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

fn blob_of<'a>(blobs: &[(u32, &'a [u8])], tag: u32) -> Option<&'a [u8]> {
    blobs.iter().rev().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

fn raw_json(raw: &[u8]) -> Result<Value, DecodeError> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(&super::MAGIC) {
        let (_, _, v) = super::decode_any(raw).map_err(|e| DecodeError(e.message))?;
        return Ok(v);
    }
    serde_json::from_slice(raw).map_err(|e| DecodeError(format!("embedded object is not JSON: {e}")))
}

fn decode_special(
    schema: &Schema,
    special: Special,
    msg: usize,
    buf: &[u8],
    depth: usize,
) -> Result<Value, DecodeError> {
    let (ints, blobs) = fields_of(buf)?;
    Ok(match special {
        Special::None => Value::Null,
        Special::Time | Special::MicroTime => {
            if ints.is_empty() {
                return Ok(Value::Null);
            }
            let secs = int_of(&ints, 1).unwrap_or(0) as i64;
            let nanos = int_of(&ints, 2).unwrap_or(0) as i64 as i32;
            let t = jiff::Timestamp::new(secs, nanos).map_err(|e| DecodeError(format!("invalid time: {e}")))?;
            let fmt = if special == Special::Time { "%Y-%m-%dT%H:%M:%SZ" } else { "%Y-%m-%dT%H:%M:%S.%6fZ" };
            Value::String(t.strftime(fmt).to_string())
        }
        Special::Duration => Value::String(format_go_duration(int_of(&ints, 1).unwrap_or(0) as i64)),
        Special::Quantity => {
            Value::String(String::from_utf8_lossy(blob_of(&blobs, 1).unwrap_or_default()).into_owned())
        }
        Special::IntOrString => {
            if int_of(&ints, 1) == Some(1) {
                Value::String(String::from_utf8_lossy(blob_of(&blobs, 3).unwrap_or_default()).into_owned())
            } else {
                Value::from(int_of(&ints, 2).unwrap_or(0) as i32)
            }
        }
        Special::RawExtension | Special::RawJson => raw_json(blob_of(&blobs, 1).unwrap_or_default())?,
        Special::PropsOrArray => {
            let Some(p) = props_message(schema, msg, 1) else { return Ok(Value::Null) };
            let items: Vec<&[u8]> = blobs.iter().filter(|(t, _)| *t == 2).map(|(_, b)| *b).collect();
            if items.is_empty() {
                decode_at(schema, p, blob_of(&blobs, 1).unwrap_or_default(), depth + 1)?
            } else {
                Value::Array(items.into_iter().map(|b| decode_at(schema, p, b, depth + 1)).collect::<Result<_, _>>()?)
            }
        }
        Special::PropsOrBool => match (blob_of(&blobs, 2), props_message(schema, msg, 2)) {
            (Some(b), Some(p)) => decode_at(schema, p, b, depth + 1)?,
            _ => Value::Bool(int_of(&ints, 1).unwrap_or(0) != 0),
        },
        Special::Items => Value::Array(
            blobs
                .iter()
                .filter(|(t, _)| *t == 1)
                .map(|(_, b)| Value::String(String::from_utf8_lossy(b).into_owned()))
                .collect(),
        ),
        Special::PropsOrStringArray => {
            let items: Vec<Value> = blobs
                .iter()
                .filter(|(t, _)| *t == 2)
                .map(|(_, b)| Value::String(String::from_utf8_lossy(b).into_owned()))
                .collect();
            match (items.is_empty(), props_message(schema, msg, 1)) {
                (true, Some(p)) => decode_at(schema, p, blob_of(&blobs, 1).unwrap_or_default(), depth + 1)?,
                _ => Value::Array(items),
            }
        }
    })
}

// ----- Go durations -------------------------------------------------------------------

/// Go's `time.Duration.String()`: "1h2m3s", "1.5s", "300ms", "0s".
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let n = nanos.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if n < 1_000_000_000 {
        let (unit, div) = if n < 1_000 {
            ("ns", 1)
        } else if n < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{sign}{}{unit}", trim_frac(n, div));
    }
    let h = n / 3_600_000_000_000;
    let m = (n / 60_000_000_000) % 60;
    let s = n % 60_000_000_000;
    let mut out = String::from(sign);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim_frac(s, 1_000_000_000)));
    out
}

fn trim_frac(n: u64, div: u64) -> String {
    let whole = n / div;
    let frac = n % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Parse a Go duration string ("1h30m", "2.5s", "100ms") into nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[unit_end..];
    }
    Some(if neg { -(total as i64) } else { total as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(kind: &str, v: Value) -> Value {
        let s = Schema::get();
        let m = s.for_kind("", "v1", kind).expect("kind");
        let mut out = Vec::new();
        encode_message(s, m, &v, &mut out);
        decode_message(s, m, &out).expect("decodes")
    }

    #[test]
    fn objects_survive_a_roundtrip() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "d", "labels": {"a": "b", "e": ""},
                "creationTimestamp": "2026-12-02T17:16:53Z", "generation": 3},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                "resources": {"requests": {"cpu": "250m"}},
                "livenessProbe": {"httpGet": {"port": "http", "path": "/"}}}],
                "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": false},
            "status": {"phase": "Running", "startTime": "2026-12-02T17:16:55Z",
                "podIPs": [{"ip": "10.0.0.1"}]}
        });
        assert_eq!(roundtrip("Pod", pod.clone()), pod);
        let secret = json!({"metadata": {"name": "s"}, "data": {"k": "aGVsbG8="}, "type": "Opaque"});
        assert_eq!(roundtrip("Secret", secret.clone()), secret);
        let ev = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod"},
            "eventTime": "2026-12-02T17:16:53.123456Z", "count": 2});
        assert_eq!(roundtrip("Event", ev.clone()), ev);
    }

    #[test]
    fn go_zero_values_read_as_absent() {
        // What a Go client writes for an object with only a name: every
        // non-pointer field, zero or not.
        let s = Schema::get();
        let meta = s.by_name("apimachinery/pkg/apis/meta/v1.ObjectMeta").unwrap();
        let mut out = Vec::new();
        put_bytes(&mut out, 1, b"cm1");
        put_bytes(&mut out, 2, b"");
        put_key(&mut out, 7, WIRE_VARINT);
        put_varint(&mut out, 0);
        put_bytes(&mut out, 8, b"");
        assert_eq!(decode_message(s, meta, &out).unwrap(), json!({"name": "cm1"}));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let s = Schema::get();
        let pod = s.for_kind("", "v1", "Pod").unwrap();
        for bad in [&b"\xff\xff\xff"[..], b"\x0a\x7f", b"\x00", b"\x12\x05ab", b"\x0b"] {
            assert!(decode_message(s, pod, bad).is_err(), "{bad:?}");
        }
        // Deep nesting is bounded.
        let props = s.by_name("apiextensions_apiserver/pkg/apis/apiextensions/v1.JsonSchemaProps").unwrap();
        let mut deep = json!({"type": "object"});
        for _ in 0..100 {
            deep = json!({"properties": {"x": deep}});
        }
        let mut out = Vec::new();
        encode_message(s, props, &deep, &mut out);
        assert!(decode_message(s, props, &out).is_err());
    }

    #[test]
    fn go_durations() {
        for (n, s) in [(0, "0s"), (1_500_000_000, "1.5s"), (3_600_000_000_000, "1h0m0s"), (300_000_000, "300ms")] {
            assert_eq!(format_go_duration(n), s);
            assert_eq!(parse_go_duration(s), Some(n));
        }
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("x"), None);
    }
}

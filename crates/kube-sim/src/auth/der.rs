//! Just enough DER to read a certificate's subject: the common name is the
//! user, the organisations are the groups (upstream's x509 authenticator).
//! The certificate has been verified before it is read; still, every length
//! is checked and a malformed one yields `None`, never a panic.

/// One TLV: (tag, contents, rest).
fn tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const CN: &[u8] = &[0x55, 0x04, 0x03];
const O: &[u8] = &[0x55, 0x04, 0x0a];

/// `(common name, organisations)` of a DER certificate's subject.
pub fn subject(cert: &[u8]) -> Option<(String, Vec<String>)> {
    let (SEQUENCE, cert, _) = tlv(cert)? else { return None };
    let (SEQUENCE, mut tbs, _) = tlv(cert)? else { return None };
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, rest) = tlv(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
    }
    for _ in 0..4 {
        let (_, _, rest) = tlv(tbs)?;
        tbs = rest;
    }
    let (SEQUENCE, mut name, _) = tlv(tbs)? else { return None };
    let (mut cn, mut orgs) = (String::new(), Vec::new());
    while !name.is_empty() {
        let (SET, mut set, rest) = tlv(name)? else { return None };
        name = rest;
        while !set.is_empty() {
            let (SEQUENCE, atv, rest) = tlv(set)? else { return None };
            set = rest;
            let (OID, oid, value) = tlv(atv)? else { return None };
            let (tag, value, _) = tlv(value)?;
            let text = match tag {
                // UTF8String, PrintableString, IA5String, TeletexString
                0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8_lossy(value).into_owned(),
                // BMPString (UTF-16BE)
                0x1e => {
                    let units: Vec<u16> = value.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                    String::from_utf16_lossy(&units)
                }
                _ => continue,
            };
            if oid == CN {
                cn = text;
            } else if oid == O {
                orgs.push(text);
            }
        }
    }
    Some((cn, orgs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_subject_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "dev");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cn, orgs) = subject(cert.der()).unwrap();
        assert_eq!(cn, "alice");
        assert_eq!(orgs, vec!["dev"]);
        for n in 0..cert.der().len() {
            let _ = subject(&cert.der()[..n]); // truncated input never panics
        }
        assert!(subject(b"\x30\x84\xff\xff\xff\xff").is_none());
    }
}

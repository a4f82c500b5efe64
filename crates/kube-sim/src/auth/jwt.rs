//! JSON Web Tokens signed with the simulator's service-account key (ES256,
//! ECDSA P-256 — upstream signs with whatever key `--service-account-signing-key-file`
//! holds; an EC key gives ES256). The key id is upstream's: the unpadded
//! base64url SHA-256 of the public key's DER `SubjectPublicKeyInfo`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// DER prefix of an uncompressed P-256 public key's SubjectPublicKeyInfo.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

pub struct Signer {
    key: Option<EcdsaKeyPair>,
    public: Vec<u8>,
    kid: String,
    rng: SystemRandom,
}

impl Signer {
    /// A fresh key (a new cluster, new keys: tokens of another run do not verify).
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .ok()
            .and_then(|pkcs8| EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).ok());
        let public = key.as_ref().map(|k| k.public_key().as_ref().to_vec()).unwrap_or_default();
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&public);
        let kid = B64.encode(ring::digest::digest(&ring::digest::SHA256, &spki));
        if key.is_none() {
            tracing::error!("kube-sim could not generate its service-account signing key: tokens cannot be issued");
        }
        Signer { key, public, kid, rng }
    }

    /// `header.claims.signature`.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let key = self.key.as_ref().ok_or("no service-account signing key")?;
        let header = json!({"alg": "ES256", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(&header).unwrap_or_default()),
            B64.encode(serde_json::to_vec(claims).map_err(|e| e.to_string())?)
        );
        let sig = key.sign(&self.rng, signing_input.as_bytes()).map_err(|_| "signing failed".to_string())?;
        Ok(format!("{signing_input}.{}", B64.encode(sig.as_ref())))
    }

    /// The claims of a token this key signed; `None` when the token is not a
    /// JWT of ours (another issuer's, garbage, a bad signature).
    pub fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
        if header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return None;
        }
        if let Some(kid) = header.get("kid").and_then(Value::as_str)
            && kid != self.kid
        {
            return None;
        }
        let sig = B64.decode(s).ok()?;
        let signing_input = &token[..h.len() + 1 + c.len()];
        signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(signing_input.as_bytes(), &sig)
            .ok()?;
        serde_json::from_slice(&B64.decode(c).ok()?).ok()
    }

    /// Whether `token` looks like a JWT (three dot-separated base64url parts).
    pub fn looks_like_jwt(token: &str) -> bool {
        let parts: Vec<&str> = token.split('.').collect();
        parts.len() == 3 && B64.decode(parts[0]).is_ok_and(|h| serde_json::from_slice::<Value>(&h).is_ok())
    }

    pub fn jwks(&self) -> Value {
        let (x, y) =
            if self.public.len() == 65 { (&self.public[1..33], &self.public[33..]) } else { (&[][..], &[][..]) };
        json!({"keys": [{"use": "sig", "kty": "EC", "kid": self.kid, "crv": "P-256", "alg": "ES256",
            "x": B64.encode(x), "y": B64.encode(y)}]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_rejects_tampering() {
        let s = Signer::generate();
        let token = s.sign(&json!({"sub": "x", "exp": 1})).unwrap();
        assert!(Signer::looks_like_jwt(&token));
        assert_eq!(s.verify(&token).unwrap()["sub"], "x");
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = B64.encode(br#"{"sub":"admin","exp":1}"#);
        assert!(s.verify(&parts.join(".")).is_none(), "a changed payload fails the signature");
        assert!(Signer::generate().verify(&token).is_none(), "another cluster's key does not verify");
        assert!(s.verify("not-a-jwt").is_none());
        assert!(s.verify("a.b.c.d").is_none());
        let jwks = s.jwks();
        assert_eq!(jwks["keys"][0]["kid"].as_str().unwrap().len(), 43);
    }
}

//! A client-side SCRAM (RFC 5802) written from the RFC, independent of the
//! server's implementation, so that tests do not check the server against
//! itself.

use anyhow::{anyhow, bail, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    pub fn mechanism(self) -> &'static str {
        match self {
            Hash::Sha1 => "SCRAM-SHA-1",
            Hash::Sha256 => "SCRAM-SHA-256",
        }
    }

    /// The channel-binding variant's name.
    pub fn plus_mechanism(self) -> &'static str {
        match self {
            Hash::Sha1 => "SCRAM-SHA-1-PLUS",
            Hash::Sha256 => "SCRAM-SHA-256-PLUS",
        }
    }

    fn h(self, d: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(d).to_vec(),
            Hash::Sha256 => Sha256::digest(d).to_vec(),
        }
    }

    fn hmac(self, k: &[u8], d: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut m = <Hmac<Sha1> as Mac>::new_from_slice(k).expect("any key length");
                m.update(d);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(k).expect("any key length");
                m.update(d);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// `Hi()`: the PBKDF2 a client pays once per account (RFC 5802 §2.2).
    pub fn hi(self, password: &[u8], salt: &[u8], i: u32) -> Vec<u8> {
        match self {
            Hash::Sha1 => pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(password, salt, i).to_vec(),
            Hash::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, i).to_vec(),
        }
    }
}

pub struct ScramClient {
    hash: Hash,
    password: String,
    first_bare: String,
    nonce: String,
    /// `n,,` without channel binding, `p=<type>,,` with it.
    gs2_header: String,
    binding_data: Vec<u8>,
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    pub fn new(hash: Hash, username: &str, password: &str, nonce: &str) -> Self {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            hash,
            password: password.to_owned(),
            first_bare: format!("n={name},r={nonce}"),
            nonce: nonce.to_owned(),
            gs2_header: "n,,".to_owned(),
            binding_data: Vec::new(),
            server_signature: None,
        }
    }

    /// Bind to the channel (a `-PLUS` mechanism): `kind` is the binding
    /// type, `data` what this client computed from its TLS session.
    pub fn with_channel_binding(mut self, kind: &str, data: &[u8]) -> Self {
        self.gs2_header = format!("p={kind},,");
        self.binding_data = data.to_vec();
        self
    }

    /// Say "I could bind, but I think you cannot" (the `y` GS2 flag).
    pub fn claiming_server_cannot_bind(mut self) -> Self {
        self.gs2_header = "y,,".to_owned();
        self
    }

    pub fn client_first(&self) -> String {
        format!("{}{}", self.gs2_header, self.first_bare)
    }

    /// Answer the server-first-message with the client-final-message.
    pub fn client_final(&mut self, server_first: &str) -> Result<String> {
        let hash = self.hash;
        let password = self.password.clone();
        self.client_final_salted(server_first, |salt, i| {
            hash.hi(password.as_bytes(), salt, i)
        })
    }

    /// Like [`ScramClient::client_final`], taking `SaltedPassword` from
    /// `salted(salt, iterations)`: a load generator derives it once per
    /// account, before it measures anything, as a real client caches it.
    pub fn client_final_salted(
        &mut self,
        server_first: &str,
        salted: impl FnOnce(&[u8], u32) -> Vec<u8>,
    ) -> Result<String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v.to_owned()),
                Some(("s=", v)) => salt = Some(B64.decode(v)?),
                Some(("i=", v)) => iterations = Some(v.parse::<u32>()?),
                _ => {}
            }
        }
        let (nonce, salt, iterations) = match (nonce, salt, iterations) {
            (Some(n), Some(s), Some(i)) => (n, s, i),
            _ => bail!("incomplete server-first-message {server_first:?}"),
        };
        if !nonce.starts_with(&self.nonce) {
            bail!("server nonce does not extend ours");
        }
        let binding = [self.gs2_header.as_bytes(), &self.binding_data].concat();
        let without_proof = format!("c={},r={nonce}", B64.encode(binding));
        let auth_message = format!("{},{},{}", self.first_bare, server_first, without_proof);
        let salted = salted(&salt, iterations);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.h(&client_key);
        let signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = self.hash.hmac(&salted, b"Server Key");
        self.server_signature = Some(self.hash.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// The salt and iteration count of a server-first-message.
    pub fn salt_of(server_first: &str) -> Result<(Vec<u8>, u32)> {
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_at_checked(2) {
                Some(("s=", v)) => salt = Some(B64.decode(v)?),
                Some(("i=", v)) => iterations = Some(v.parse::<u32>()?),
                _ => {}
            }
        }
        salt.zip(iterations)
            .ok_or_else(|| anyhow!("no salt in {server_first:?}"))
    }

    /// Check the server-final-message (`v=…`): the server knew our keys.
    pub fn verify_server_final(&self, server_final: &str) -> Result<()> {
        let v = server_final
            .strip_prefix("v=")
            .ok_or_else(|| anyhow!("no verifier in {server_final:?}"))?;
        if Some(B64.decode(v)?) != self.server_signature {
            bail!("server signature does not verify");
        }
        Ok(())
    }
}

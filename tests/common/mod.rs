//! Helpers shared by the test binaries (each includes this file as a module).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A path inside the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A self-signed certificate for `localhost`, written as PEM files.
pub struct SelfSigned {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub pem: String,
}

/// Makes a certificate and writes it under `dir` as `NAME.crt` and `NAME.key`.
pub fn self_signed(dir: &Path, name: &str) -> SelfSigned {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let certificate = SelfSigned {
        cert_file: dir.join(format!("{name}.crt")),
        key_file: dir.join(format!("{name}.key")),
        pem: cert.pem(),
    };
    std::fs::write(&certificate.cert_file, &certificate.pem).unwrap();
    std::fs::write(&certificate.key_file, signing_key.serialize_pem()).unwrap();
    certificate
}

/// An HTTPS client that trusts `certificate` and nothing else, and finds `localhost` at
/// `address`. Make a fresh one per check, so no pooled connection hides a new certificate.
pub fn trusting(certificate: &SelfSigned, address: std::net::SocketAddr) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(certificate.pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .resolve("localhost", address)
        .https_only(true)
        .build()
        .unwrap()
}

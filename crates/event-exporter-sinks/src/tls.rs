//! Receivers' `tls:` options, as upstream writes them: `insecureSkipVerify`, `serverName`,
//! `caFile`, `certFile`, `keyFile`.
//!
//! The files are read and parsed when the receiver is built, so `check` refuses a missing or
//! malformed one, naming the receiver and the field. The system's CA roots are always trusted;
//! `caFile` adds to them.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

/// `tls:` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsConfig {
    /// Accept any server certificate (as Go's `InsecureSkipVerify`): for tests only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// The name to verify the server certificate against (and send as SNI).
    #[serde(default)]
    pub server_name: String,
    /// A PEM bundle of CAs to trust, besides the system's.
    #[serde(default)]
    pub ca_file: String,
    /// A PEM client certificate chain (with `keyFile`), for mutual TLS.
    #[serde(default)]
    pub cert_file: String,
    /// The client certificate's PEM private key.
    #[serde(default)]
    pub key_file: String,
}

/// Loaded TLS settings, ready to build a client configuration from.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    insecure: bool,
    server_name: Option<ServerName<'static>>,
    extra_roots: Vec<CertificateDer<'static>>,
    client_auth: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
}

fn read_certs(field: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(Path::new(path))
        .map_err(|e| format!("tls.{field}: cannot read {path}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.{field}: {path} is not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!("tls.{field}: {path} holds no PEM certificate"));
    }
    Ok(certs)
}

impl TlsSettings {
    /// Reads and checks the files `cfg` names.
    pub fn load(cfg: &TlsConfig) -> Result<Self, String> {
        let server_name = if cfg.server_name.is_empty() {
            None
        } else {
            Some(
                ServerName::try_from(cfg.server_name.clone())
                    .map_err(|e| format!("tls.serverName: `{}`: {e}", cfg.server_name))?,
            )
        };
        let extra_roots = if cfg.ca_file.is_empty() {
            Vec::new()
        } else {
            read_certs("caFile", &cfg.ca_file)?
        };
        let client_auth = match (cfg.cert_file.is_empty(), cfg.key_file.is_empty()) {
            (true, true) => None,
            (false, false) => {
                let certs = read_certs("certFile", &cfg.cert_file)?;
                let key = PrivateKeyDer::from_pem_file(&cfg.key_file).map_err(|e| {
                    format!(
                        "tls.keyFile: {}: not a readable PEM private key: {e}",
                        cfg.key_file
                    )
                })?;
                Some((certs, Arc::new(key)))
            }
            _ => {
                return Err("tls.certFile, tls.keyFile: a client certificate needs both".to_owned());
            }
        };
        let settings = Self {
            insecure: cfg.insecure_skip_verify,
            server_name,
            extra_roots,
            client_auth,
        };
        // Build once now so a certificate/key mismatch is reported by `check`.
        settings.client_config()?;
        Ok(settings)
    }

    /// The name to verify against instead of the URL's host.
    pub fn server_name(&self) -> Option<&ServerName<'static>> {
        self.server_name.as_ref()
    }

    /// The rustls client configuration.
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
        } else {
            let mut roots = native_roots().clone();
            for cert in &self.extra_roots {
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("tls.caFile: a certificate is not a usable CA: {e}"))?;
            }
            builder.with_root_certificates(roots)
        };
        match &self.client_auth {
            None => Ok(builder.with_no_client_auth()),
            Some((certs, key)) => builder
                .with_client_auth_cert(certs.clone(), key.clone_key())
                .map_err(|e| format!("tls.certFile, tls.keyFile: {e}")),
        }
    }
}

/// The system's CA roots, read once per process (every HTTP receiver trusts them).
fn native_roots() -> &'static RootCertStore {
    static ROOTS: std::sync::OnceLock<RootCertStore> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A system certificate rustls cannot use is skipped, as every client does.
            let _ = roots.add(cert);
        }
        roots
    })
}

/// `insecureSkipVerify`: any certificate is accepted; handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

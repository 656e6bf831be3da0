//! TLS to upstream providers (and OAuth servers), shared by the planes: the
//! data plane's upstream client and the control plane's health checks and
//! token refreshes trust the same roots.

use std::path::Path;
use std::sync::Arc;

/// TLS to upstreams: ring only, roots from the system, webpki-roots and the
/// optional PEM file.
pub fn upstream_client_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "a system root certificate could not be read");
    }
    let (_, ignored) = roots.add_parsable_certificates(native.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "system root certificates rustls cannot use");
    }
    if let Some(path) = extra_ca {
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {shown}: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{shown} is not PEM: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{shown} holds no certificate"));
        }
        for c in certs {
            roots.add(c).map_err(|e| format!("{shown}: {e}"))?;
        }
    }
    // ALPN is left to the connector (hyper-rustls sets http/1.1).
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

//! Who the sidecar exports as.
//!
//! The generated instance id is kept in `<data dir>/instance_id`, written
//! `0600` through a temporary file that is never a followed link
//! ([`crate::storage::owner_only`]).

use super::config::ExportConfig;
use crate::proto::telemetrygateway::v1::identifier::{
    Identifier as Id, LicensedInstanceIdentifier, UnlicensedInstanceIdentifier,
};
use crate::proto::telemetrygateway::v1::{Identifier, RecordEventsRequestMetadata};
use std::path::Path;

/// File in the data directory that keeps the generated instance id.
pub const INSTANCE_ID_FILE: &str = "instance_id";

/// The configured instance id, or the one kept in the data directory
/// (generated, UUID v4, on first start).
pub fn instance_id(config: &ExportConfig, data_dir: &Path) -> std::io::Result<String> {
    if let Some(id) = &config.instance_id {
        return Ok(id.clone());
    }
    let path = data_dir.join(INSTANCE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = uuid::Uuid::new_v4().to_string();
    let tmp = data_dir.join(format!("{INSTANCE_ID_FILE}.tmp"));
    // Owner-only, and a link planted at the temporary name is refused, not
    // followed (and truncated).
    let mut file = crate::storage::owner_only::file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| crate::storage::owner_only::explain(&tmp, e))?;
    std::io::Write::write_all(&mut file, id.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    tracing::info!(instance_id = %id, "generated the instance id");
    Ok(id)
}

/// The identifier: licensed when a license key is configured, else
/// unlicensed (Sourcegraph's rule).
pub fn identifier(config: &ExportConfig, instance_id: &str) -> Identifier {
    let id = match &config.license_key {
        Some(key) => Id::LicensedInstance(LicensedInstanceIdentifier {
            license_key: key.clone(),
            instance_id: instance_id.to_string(),
            external_url: config.external_url.clone(),
        }),
        None => Id::UnlicensedInstance(UnlicensedInstanceIdentifier {
            instance_id: instance_id.to_string(),
            external_url: config.external_url.clone(),
        }),
    };
    Identifier {
        identifier: Some(id),
    }
}

/// The metadata message that opens a stream (a fresh request id each time).
pub fn metadata(identifier: &Identifier) -> RecordEventsRequestMetadata {
    RecordEventsRequestMetadata {
        request_id: uuid::Uuid::new_v4().to_string(),
        identifier: Some(identifier.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::config::DEFAULT_EXPORT_INTERVAL;

    fn config() -> ExportConfig {
        ExportConfig {
            addr: None,
            interval: DEFAULT_EXPORT_INTERVAL,
            batch_size: 10_000,
            max_attempts: 10,
            instance_id: None,
            license_key: None,
            external_url: "https://sg.example.com".into(),
            insecure: false,
            gzip: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }

    #[test]
    fn the_generated_instance_id_is_kept_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let a = instance_id(&config(), dir.path()).unwrap();
        let b = instance_id(&config(), dir.path()).unwrap();
        assert_eq!(a, b);
        assert!(uuid::Uuid::parse_str(&a).is_ok());
        let mut c = config();
        c.instance_id = Some("fixed".into());
        assert_eq!(instance_id(&c, dir.path()).unwrap(), "fixed");
    }

    #[test]
    fn the_instance_id_file_is_owner_only_and_a_planted_link_is_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        instance_id(&config(), dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(INSTANCE_ID_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let other = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, other.path().join("instance_id.tmp")).unwrap();
        let e = instance_id(&config(), other.path()).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn a_license_key_makes_a_licensed_identifier() {
        let mut c = config();
        assert!(matches!(
            identifier(&c, "i").identifier,
            Some(Id::UnlicensedInstance(_))
        ));
        c.license_key = Some("key".into());
        match identifier(&c, "i").identifier {
            Some(Id::LicensedInstance(l)) => {
                assert_eq!(
                    (l.license_key.as_str(), l.instance_id.as_str()),
                    ("key", "i")
                );
                assert_eq!(l.external_url, "https://sg.example.com");
            }
            other => panic!("{other:?}"),
        }
    }
}

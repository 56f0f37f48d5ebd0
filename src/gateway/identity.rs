//! Who is streaming: the identifier checks of Sourcegraph's gateway, with
//! files standing in for its license verification and SAMS.
//!
//! ```text
//! licensed_instance    license_key accepted by the verifier    else InvalidArgument "invalid license_key: …"
//! unlicensed_instance  instance_id non-empty                   else InvalidArgument "instance_id is required for unlicensed instance"
//! managed_service      service_id non-empty                    else InvalidArgument "service_id is required for managed service"
//!                      gRPC metadata `authorization: Bearer T` missing  → Unauthenticated
//!                      T not in the service-tokens file (for it)        → PermissionDenied "permission denied"
//! none / other         Unimplemented "unsupported identifier type"
//! ```
//!
//! **License-keys file**: one key per line; blank lines and lines starting
//! with `#` are ignored (a file with no keys loads, with a warning: it
//! accepts no licensed instance); a line may also be the key's SHA-256 as 64 hex
//! digits (optionally written `sha256:HEX`), so the file need not hold the
//! keys themselves. **Service-tokens file**: one token per line, or
//! `SERVICE_ID TOKEN` to allow the token for that service only; tokens may
//! be given as hashes the same way. Secrets are kept only as SHA-256 hashes
//! in memory and compared hash to hash.
//!
//! Both files are read again on SIGHUP ([`Identity::reload`], wired in
//! [`super::reload`]): the new keys and tokens apply to streams whose
//! metadata arrives afterwards; a file that fails to load (missing, a bad
//! line) keeps the previous keys and tokens, both files together.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use sha2::{Digest, Sha256};
use tonic::{Code, Status};

use super::render::PublisherSource;
use crate::proto::telemetrygateway::v1::RecordEventsRequestMetadata;
use crate::proto::telemetrygateway::v1::identifier::Identifier as IdentifierKind;

/// A SHA-256 digest.
type Hash = [u8; 32];

fn sha256(secret: &str) -> Hash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Parses 64 hex digits.
fn parse_hex_hash(text: &str) -> Option<Hash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let digit = |b: u8| char::from(b).to_digit(16);
        let (Some(hi), Some(lo)) = (
            pair.first().and_then(|b| digit(*b)),
            pair.get(1).and_then(|b| digit(*b)),
        ) else {
            return None;
        };
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// The hashes a secret line stands for: the hash of the line itself, and the
/// line read as a hash when it is 64 hex digits (`sha256:` forces that).
fn line_hashes(secret: &str) -> Option<Vec<Hash>> {
    if let Some(hex) = secret.strip_prefix("sha256:") {
        return parse_hex_hash(hex).map(|h| vec![h]);
    }
    let mut hashes = vec![sha256(secret)];
    hashes.extend(parse_hex_hash(secret));
    Some(hashes)
}

/// A secrets file that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityFileError {
    /// The file could not be read. At start nothing runs, at reload the
    /// old identities stay; the operator fixes the path.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line that is not in the file's format. As for an unreadable
    /// file; the operator fixes the line named.
    #[error("{path} line {line}: {problem}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        problem: LineProblem,
    },
}

/// What is wrong with a line of a secrets file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineProblem {
    /// `sha256:` not followed by 64 hex digits.
    BadHash,
    /// More fields than the format has.
    TooManyFields {
        /// Fields allowed.
        allowed: usize,
    },
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineProblem::BadHash => f.write_str("sha256: must be followed by 64 hex digits"),
            LineProblem::TooManyFields { allowed: 1 } => {
                f.write_str("expected one key (or its SHA-256) per line")
            }
            LineProblem::TooManyFields { .. } => {
                f.write_str("expected TOKEN or SERVICE_ID TOKEN (or a SHA-256 for TOKEN)")
            }
        }
    }
}

/// The content lines of a secrets file: (line number, whitespace-split fields).
fn content_lines(path: &Path) -> Result<Vec<(usize, Vec<String>)>, IdentityFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| IdentityFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| (n, line.split_whitespace().map(str::to_owned).collect()))
        .collect())
}

/// Decides whether a license key is accepted.
#[derive(Clone, Debug)]
pub enum LicenseVerifier {
    /// No keys configured: every licensed identifier is refused.
    None,
    /// Any non-empty key (development).
    AcceptAny,
    /// Keys listed in a file, by hash.
    Keys(Vec<Hash>),
}

impl LicenseVerifier {
    /// Loads a license-keys file (see the module docs for the format).
    pub fn from_file(path: &Path) -> Result<LicenseVerifier, IdentityFileError> {
        let mut hashes = Vec::new();
        for (line, fields) in content_lines(path)? {
            let bad = |problem| IdentityFileError::BadLine {
                path: path.to_owned(),
                line,
                problem,
            };
            let [key] = fields.as_slice() else {
                return Err(bad(LineProblem::TooManyFields { allowed: 1 }));
            };
            hashes.extend(line_hashes(key).ok_or_else(|| bad(LineProblem::BadHash))?);
        }
        hashes.sort_unstable();
        hashes.dedup();
        if hashes.is_empty() {
            // Not refused: a gateway may serve only unlicensed instances and
            // managed services, and a file being filled in by a deploy is
            // better loaded (and fixed by the next load) than fatal. But a
            // file with no keys accepts nobody, so it is said loudly, on
            // every load.
            tracing::warn!(
                path = ?path,
                "the license-keys file holds no keys: every licensed instance will be refused"
            );
        }
        Ok(LicenseVerifier::Keys(hashes))
    }

    /// Checks a license key.
    pub fn verify(&self, key: &str) -> Result<(), LicenseProblem> {
        if key.is_empty() {
            return Err(LicenseProblem::Empty);
        }
        match self {
            LicenseVerifier::None => Err(LicenseProblem::NoneConfigured),
            LicenseVerifier::AcceptAny => Ok(()),
            LicenseVerifier::Keys(hashes) => {
                if hashes.binary_search(&sha256(key)).is_ok() {
                    Ok(())
                } else {
                    Err(LicenseProblem::Unknown)
                }
            }
        }
    }
}

/// Why a license key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LicenseProblem {
    /// The key is empty.
    Empty,
    /// It is not in the license-keys file.
    Unknown,
    /// The gateway has no license keys configured.
    NoneConfigured,
}

impl fmt::Display for LicenseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LicenseProblem::Empty => "license key is empty",
            LicenseProblem::Unknown => "license key is not one this gateway accepts",
            LicenseProblem::NoneConfigured => {
                "this gateway accepts no license keys (see --license-keys)"
            }
        })
    }
}

/// Bearer tokens for managed services, by hash; each allowed for every
/// service (`None`) or for one service id.
#[derive(Clone, Debug, Default)]
pub struct ServiceTokens {
    tokens: HashMap<Hash, Vec<Option<String>>>,
}

impl ServiceTokens {
    /// Loads a service-tokens file (see the module docs for the format).
    pub fn from_file(path: &Path) -> Result<ServiceTokens, IdentityFileError> {
        let mut tokens: HashMap<Hash, Vec<Option<String>>> = HashMap::new();
        for (line, fields) in content_lines(path)? {
            let bad = |problem| IdentityFileError::BadLine {
                path: path.to_owned(),
                line,
                problem,
            };
            let (service, token) = match fields.as_slice() {
                [token] => (None, token),
                [service, token] => (Some(service.clone()), token),
                _ => return Err(bad(LineProblem::TooManyFields { allowed: 2 })),
            };
            for hash in line_hashes(token).ok_or_else(|| bad(LineProblem::BadHash))? {
                tokens.entry(hash).or_default().push(service.clone());
            }
        }
        Ok(ServiceTokens { tokens })
    }

    /// Whether `token` is allowed for `service_id`.
    pub fn allows(&self, token: &str, service_id: &str) -> bool {
        self.tokens.get(&sha256(token)).is_some_and(|scopes| {
            scopes
                .iter()
                .any(|scope| scope.as_deref().is_none_or(|s| s == service_id))
        })
    }
}

/// Why a stream's (or a call's) identifier was refused. Each maps to the
/// status Sourcegraph's gateway answers with ([`IdentityError::to_status`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A licensed identifier whose key the verifier refused.
    /// `INVALID_ARGUMENT`; the instance's admin fixes the license.
    #[error("invalid license_key: {0}")]
    InvalidLicenseKey(LicenseProblem),
    /// An unlicensed identifier without an instance id.
    /// `INVALID_ARGUMENT`; the sender fixes its metadata.
    #[error("instance_id is required for unlicensed instance")]
    MissingInstanceId,
    /// A managed-service identifier without a service id.
    /// `INVALID_ARGUMENT`; the sender fixes its metadata.
    #[error("service_id is required for managed service")]
    MissingServiceId,
    /// No `authorization` metadata on a managed-service call.
    /// `UNAUTHENTICATED`; the service sends its token.
    #[error("no bearer token in the authorization metadata")]
    MissingToken,
    /// An `authorization` value that is not `Bearer <token>`.
    /// `UNAUTHENTICATED`; the service fixes the header.
    #[error("authorization metadata is not a bearer token")]
    NotBearer,
    /// A token that is not allowed for the service. `PERMISSION_DENIED`;
    /// the operator adds it to the service-tokens file.
    #[error("permission denied")]
    PermissionDenied,
    /// No identifier, or a kind this gateway does not serve here.
    /// `UNIMPLEMENTED`; the sender uses a supported identifier.
    #[error("unsupported identifier type")]
    Unsupported,
}

impl IdentityError {
    /// The gRPC status code for this refusal.
    pub fn code(&self) -> Code {
        match self {
            IdentityError::InvalidLicenseKey(_)
            | IdentityError::MissingInstanceId
            | IdentityError::MissingServiceId => Code::InvalidArgument,
            IdentityError::MissingToken | IdentityError::NotBearer => Code::Unauthenticated,
            IdentityError::PermissionDenied => Code::PermissionDenied,
            IdentityError::Unsupported => Code::Unimplemented,
        }
    }

    /// The gRPC status, with this error as its message.
    pub fn to_status(&self) -> Status {
        Status::new(self.code(), self.to_string())
    }
}

/// The license verifier and the token set in force.
#[derive(Debug)]
struct Checks {
    licenses: LicenseVerifier,
    tokens: ServiceTokens,
}

/// Where the checks were loaded from, to load them again.
#[derive(Clone, Debug)]
struct IdentityFiles {
    license_keys: Option<PathBuf>,
    service_tokens: Option<PathBuf>,
    accept_any_license: bool,
}

impl IdentityFiles {
    fn load(&self) -> Result<Checks, IdentityFileError> {
        let licenses = match (self.accept_any_license, &self.license_keys) {
            (true, _) => LicenseVerifier::AcceptAny,
            (false, Some(path)) => LicenseVerifier::from_file(path)?,
            (false, None) => LicenseVerifier::None,
        };
        let tokens = match &self.service_tokens {
            Some(path) => ServiceTokens::from_file(path)?,
            None => ServiceTokens::default(),
        };
        Ok(Checks { licenses, tokens })
    }
}

/// The identifier checks, configured. Loaded from files, they can be
/// [reloaded](Identity::reload) while serving: a stream checks its
/// identifier once, against the files in force when its metadata arrived.
#[derive(Debug)]
pub struct Identity {
    current: ArcSwap<Checks>,
    files: Option<IdentityFiles>,
}

impl Identity {
    /// Checks built from a verifier and a token set (nothing to reload).
    pub fn new(licenses: LicenseVerifier, tokens: ServiceTokens) -> Identity {
        Identity {
            current: ArcSwap::from_pointee(Checks { licenses, tokens }),
            files: None,
        }
    }

    /// Loads the files named by the configuration; `accept_any_license`
    /// wins over a license-keys file.
    pub fn load(
        license_keys: Option<&Path>,
        service_tokens: Option<&Path>,
        accept_any_license: bool,
    ) -> Result<Identity, IdentityFileError> {
        let files = IdentityFiles {
            license_keys: license_keys.map(Path::to_owned),
            service_tokens: service_tokens.map(Path::to_owned),
            accept_any_license,
        };
        Ok(Identity {
            current: ArcSwap::from_pointee(files.load()?),
            files: Some(files),
        })
    }

    /// Reads the license-keys and service-tokens files again and puts both
    /// in force together; on error (a file missing or with a bad line)
    /// the previous ones stay. Streams already past their identifier check
    /// are not checked again.
    pub fn reload(&self) -> Result<(), IdentityFileError> {
        if let Some(files) = &self.files {
            self.current.store(Arc::new(files.load()?));
        }
        Ok(())
    }

    /// Checks a stream's metadata; `authorization` is the call's
    /// `authorization` gRPC metadata value, if any. Returns who publishes.
    pub fn check(
        &self,
        metadata: &RecordEventsRequestMetadata,
        authorization: Option<&str>,
    ) -> Result<PublisherSource, IdentityError> {
        let kind = metadata
            .identifier
            .as_ref()
            .and_then(|identifier| identifier.identifier.as_ref());
        let checks = self.current.load();
        match kind {
            Some(IdentifierKind::LicensedInstance(licensed)) => {
                checks
                    .licenses
                    .verify(&licensed.license_key)
                    .map_err(IdentityError::InvalidLicenseKey)?;
                Ok(PublisherSource::LicensedInstance)
            }
            Some(IdentifierKind::UnlicensedInstance(unlicensed)) => {
                if unlicensed.instance_id.is_empty() {
                    return Err(IdentityError::MissingInstanceId);
                }
                Ok(PublisherSource::UnlicensedInstance)
            }
            Some(IdentifierKind::ManagedService(service)) => {
                if service.service_id.is_empty() {
                    return Err(IdentityError::MissingServiceId);
                }
                let token = bearer_token(authorization)?;
                if !checks.tokens.allows(token, &service.service_id) {
                    return Err(IdentityError::PermissionDenied);
                }
                Ok(PublisherSource::ManagedService {
                    service_id: service.service_id.clone(),
                })
            }
            None => Err(IdentityError::Unsupported),
        }
    }

    /// [`Identity::check`] for the unary `RecordEvent`, which serves
    /// managed services only.
    pub fn check_managed_service(
        &self,
        metadata: &RecordEventsRequestMetadata,
        authorization: Option<&str>,
    ) -> Result<PublisherSource, IdentityError> {
        match self.check(metadata, authorization)? {
            source @ PublisherSource::ManagedService { .. } => Ok(source),
            _ => Err(IdentityError::Unsupported),
        }
    }
}

/// The token of an `authorization: Bearer <token>` value.
fn bearer_token(authorization: Option<&str>) -> Result<&str, IdentityError> {
    let value = authorization.ok_or(IdentityError::MissingToken)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(IdentityError::NotBearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(IdentityError::NotBearer);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn hex(hash: Hash) -> String {
        use std::fmt::Write as _;
        hash.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }

    #[test]
    fn license_keys_match_by_value_or_by_sha256_and_comments_are_skipped() {
        let hashed = hex(sha256("key-two"));
        let f = file(&format!(
            "# keys\nkey-one\n\n  {hashed}  \nsha256:{}\n",
            hex(sha256("key-three")).to_uppercase()
        ));
        let verifier = LicenseVerifier::from_file(f.path()).unwrap();
        for key in ["key-one", "key-two", "key-three"] {
            assert_eq!(verifier.verify(key), Ok(()), "{key}");
        }
        assert_eq!(verifier.verify("# keys"), Err(LicenseProblem::Unknown));
        assert_eq!(verifier.verify("key"), Err(LicenseProblem::Unknown));
        assert_eq!(verifier.verify(""), Err(LicenseProblem::Empty));
        // A 64-hex line is also accepted as a literal key.
        assert_eq!(verifier.verify(&hashed), Ok(()));
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let f = file("ok\nsha256:zz\n");
        let err = LicenseVerifier::from_file(f.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("line 2: sha256: must be followed by 64 hex digits"),
            "{err}"
        );
        let f = file("a b c\n");
        let err = ServiceTokens::from_file(f.path()).unwrap_err().to_string();
        assert!(
            err.contains("line 1: expected TOKEN or SERVICE_ID TOKEN"),
            "{err}"
        );
    }

    #[test]
    fn service_tokens_can_be_bound_to_one_service() {
        let f = file("any-service-token\nmy-service bound-token\n");
        let tokens = ServiceTokens::from_file(f.path()).unwrap();
        assert!(tokens.allows("any-service-token", "x"));
        assert!(tokens.allows("bound-token", "my-service"));
        assert!(!tokens.allows("bound-token", "other-service"));
        assert!(!tokens.allows("nope", "my-service"));
    }

    #[test]
    fn a_reload_puts_new_files_in_force_and_a_bad_file_keeps_the_previous_ones() {
        let keys = file("key-one\n");
        let tokens = file("token-one\n");
        let identity = Identity::load(Some(keys.path()), Some(tokens.path()), false).unwrap();
        let licensed = |key: &str| {
            let metadata = RecordEventsRequestMetadata {
                request_id: "r".into(),
                identifier: Some(crate::proto::telemetrygateway::v1::Identifier {
                    identifier: Some(IdentifierKind::LicensedInstance(
                        crate::proto::telemetrygateway::v1::identifier::LicensedInstanceIdentifier {
                            license_key: key.into(),
                            instance_id: "i".into(),
                            external_url: String::new(),
                        },
                    )),
                }),
            };
            identity.check(&metadata, None).is_ok()
        };
        assert!(licensed("key-one") && !licensed("key-two"));
        std::fs::write(keys.path(), "key-two\n").unwrap();
        identity.reload().unwrap();
        assert!(!licensed("key-one") && licensed("key-two"));
        std::fs::write(keys.path(), "sha256:nothex\n").unwrap();
        let e = identity.reload().unwrap_err();
        assert!(
            e.to_string().contains(&keys.path().display().to_string()),
            "{e}"
        );
        assert!(licensed("key-two"), "the previous keys stay in force");
        std::fs::write(keys.path(), "key-three\n").unwrap();
        std::fs::write(tokens.path(), "a b c\n").unwrap();
        assert!(identity.reload().is_err());
        assert!(
            licensed("key-two") && !licensed("key-three"),
            "a bad tokens file keeps the license keys too"
        );
    }

    #[test]
    fn bearer_values_are_parsed_case_insensitively() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(IdentityError::MissingToken));
        assert_eq!(
            bearer_token(Some("Basic abc")),
            Err(IdentityError::NotBearer)
        );
        assert_eq!(bearer_token(Some("Bearer")), Err(IdentityError::NotBearer));
    }

    #[test]
    fn refusals_map_to_sourcegraphs_status_codes_and_messages() {
        let cases = [
            (
                IdentityError::InvalidLicenseKey(LicenseProblem::Unknown),
                Code::InvalidArgument,
                "invalid license_key: license key is not one this gateway accepts",
            ),
            (
                IdentityError::MissingInstanceId,
                Code::InvalidArgument,
                "instance_id is required for unlicensed instance",
            ),
            (
                IdentityError::MissingToken,
                Code::Unauthenticated,
                "no bearer token in the authorization metadata",
            ),
            (
                IdentityError::PermissionDenied,
                Code::PermissionDenied,
                "permission denied",
            ),
            (
                IdentityError::Unsupported,
                Code::Unimplemented,
                "unsupported identifier type",
            ),
        ];
        for (err, code, message) in cases {
            let status = err.to_status();
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), message);
        }
    }
}

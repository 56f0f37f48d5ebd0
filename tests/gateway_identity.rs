//! Identifier checks on `RecordEvents` and the unary `RecordEvent`, with
//! the status codes and messages of Sourcegraph's gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use sha2::{Digest, Sha256};
use telespool::proto::telemetrygateway::v1::{RecordEventRequest, RecordEventsRequestMetadata};
use testkit::gateway::*;
use testkit::sinks::{Failure, MemorySink};
use tonic::Code;

/// Opens a stream with `metadata` (and a token), sends one event, and
/// returns what happened.
async fn try_stream(
    gateway: &TestGateway,
    metadata: RecordEventsRequestMetadata,
    token: Option<&str>,
) -> StreamResult {
    let mut client = gateway.client().await;
    record_with_token(
        &mut client,
        vec![metadata_request(metadata), events_request(events(0..1))],
        token,
    )
    .await
}

fn accepted(result: &StreamResult) {
    result.end.as_ref().unwrap();
    assert_eq!(result.succeeded(), ids(0..1));
}

fn refused(result: &StreamResult, code: Code, message: &str) {
    assert_eq!(result.error(), (code, message.to_owned()));
    assert!(result.responses.is_empty());
}

#[tokio::test]
async fn licensed_instance_with_a_listed_license_key_is_accepted() {
    let gateway = start(MemorySink::new()).await;
    accepted(&try_stream(&gateway, licensed(), None).await);
}

#[tokio::test]
async fn licensed_instance_with_a_key_listed_by_its_sha256_is_accepted() {
    let hash = format!("{:x}", Sha256::digest(b"hashed-key"));
    let gateway = start_with(MemorySink::new(), |config| {
        let path = config.license_keys.clone().unwrap();
        std::fs::write(&path, format!("# only the hash is stored\n{hash}\n")).unwrap();
    })
    .await;
    accepted(&try_stream(&gateway, licensed_with("hashed-key"), None).await);
    refused(
        &try_stream(&gateway, licensed_with(&hash[..10]), None).await,
        Code::InvalidArgument,
        "invalid license_key: license key is not one this gateway accepts",
    );
}

#[tokio::test]
async fn licensed_instance_with_an_unknown_license_key_is_invalid_argument() {
    let gateway = start(MemorySink::new()).await;
    refused(
        &try_stream(&gateway, licensed_with("someone-elses-key"), None).await,
        Code::InvalidArgument,
        "invalid license_key: license key is not one this gateway accepts",
    );
    refused(
        &try_stream(&gateway, licensed_with(""), None).await,
        Code::InvalidArgument,
        "invalid license_key: license key is empty",
    );
}

#[tokio::test]
async fn licensed_instance_is_refused_when_no_license_keys_are_configured() {
    let gateway = start_with(MemorySink::new(), |config| config.license_keys = None).await;
    refused(
        &try_stream(&gateway, licensed(), None).await,
        Code::InvalidArgument,
        "invalid license_key: this gateway accepts no license keys (see --license-keys)",
    );
}

#[tokio::test]
async fn accept_any_license_accepts_every_non_empty_key() {
    let gateway = start_with(MemorySink::new(), |config| {
        config.license_keys = None;
        config.accept_any_license = true;
    })
    .await;
    accepted(&try_stream(&gateway, licensed_with("anything"), None).await);
    refused(
        &try_stream(&gateway, licensed_with(""), None).await,
        Code::InvalidArgument,
        "invalid license_key: license key is empty",
    );
}

#[tokio::test]
async fn unlicensed_instance_needs_an_instance_id() {
    let gateway = start(MemorySink::new()).await;
    accepted(&try_stream(&gateway, unlicensed(), None).await);
    refused(
        &try_stream(&gateway, unlicensed_with(""), None).await,
        Code::InvalidArgument,
        "instance_id is required for unlicensed instance",
    );
}

#[tokio::test]
async fn managed_service_without_a_service_id_is_invalid_argument() {
    let gateway = start(MemorySink::new()).await;
    refused(
        &try_stream(&gateway, managed_with(""), Some(SERVICE_TOKEN)).await,
        Code::InvalidArgument,
        "service_id is required for managed service",
    );
}

#[tokio::test]
async fn managed_service_without_a_bearer_token_is_unauthenticated() {
    let gateway = start(MemorySink::new()).await;
    let result = try_stream(&gateway, managed(), None).await;
    assert_eq!(result.error().0, Code::Unauthenticated);
}

#[tokio::test]
async fn managed_service_with_a_token_that_is_not_bearer_is_unauthenticated() {
    let gateway = start(MemorySink::new()).await;
    let mut client = gateway.client().await;
    let mut request = tonic::Request::new(tokio_stream::iter(vec![metadata_request(managed())]));
    request
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    let mut inbound = client.record_events(request).await.unwrap().into_inner();
    let status = inbound.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn managed_service_with_a_wrong_token_is_permission_denied() {
    let gateway = start(MemorySink::new()).await;
    refused(
        &try_stream(&gateway, managed(), Some("wrong-token")).await,
        Code::PermissionDenied,
        "permission denied",
    );
}

#[tokio::test]
async fn managed_service_with_a_token_bound_to_another_service_is_permission_denied() {
    let gateway = start(MemorySink::new()).await;
    refused(
        &try_stream(&gateway, managed(), Some("bound-to-other")).await,
        Code::PermissionDenied,
        "permission denied",
    );
    accepted(
        &try_stream(
            &gateway,
            managed_with("other-service"),
            Some("bound-to-other"),
        )
        .await,
    );
}

#[tokio::test]
async fn managed_service_with_a_valid_token_is_accepted() {
    let gateway = start(MemorySink::new()).await;
    accepted(&try_stream(&gateway, managed(), Some(SERVICE_TOKEN)).await);
}

#[tokio::test]
async fn metadata_without_an_identifier_is_unimplemented() {
    let gateway = start(MemorySink::new()).await;
    refused(
        &try_stream(&gateway, metadata(None), None).await,
        Code::Unimplemented,
        "unsupported identifier type",
    );
    let no_identifier = RecordEventsRequestMetadata {
        request_id: "r".to_owned(),
        identifier: None,
    };
    refused(
        &try_stream(&gateway, no_identifier, None).await,
        Code::Unimplemented,
        "unsupported identifier type",
    );
}

// ---- RecordEvent (unary) ----

fn unary(
    metadata: Option<RecordEventsRequestMetadata>,
    with_event: bool,
    token: Option<&str>,
) -> tonic::Request<RecordEventRequest> {
    let mut request = tonic::Request::new(RecordEventRequest {
        metadata,
        event: with_event.then(|| event(0)),
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

#[tokio::test]
async fn record_event_publishes_one_event_for_a_managed_service() {
    let sink = MemorySink::new();
    let gateway = start(sink.clone()).await;
    let mut client = gateway.client().await;
    client
        .record_event(unary(Some(managed()), true, Some(SERVICE_TOKEN)))
        .await
        .unwrap();
    let message = sink.message("event-0").unwrap();
    assert_eq!(message.attributes["publisher.source"], SERVICE_ID);
}

#[tokio::test]
async fn record_event_from_instance_identifiers_is_unimplemented() {
    let gateway = start(MemorySink::new()).await;
    let mut client = gateway.client().await;
    for metadata in [
        Some(licensed()),
        Some(unlicensed()),
        Some(metadata(None)),
        None,
    ] {
        let status = client
            .record_event(unary(metadata, true, None))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        assert_eq!(status.message(), "unsupported identifier type");
    }
}

#[tokio::test]
async fn record_event_checks_the_managed_service_token() {
    let gateway = start(MemorySink::new()).await;
    let mut client = gateway.client().await;
    let status = client
        .record_event(unary(Some(managed()), true, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = client
        .record_event(unary(Some(managed()), true, Some("wrong")))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::PermissionDenied, "permission denied")
    );
    let status = client
        .record_event(unary(Some(managed_with("")), true, Some(SERVICE_TOKEN)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn record_event_without_an_event_is_invalid_argument() {
    let gateway = start(MemorySink::new()).await;
    let mut client = gateway.client().await;
    let status = client
        .record_event(unary(Some(managed()), false, Some(SERVICE_TOKEN)))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "event is required")
    );
}

#[tokio::test]
async fn record_event_publish_failures_are_internal() {
    let sink = MemorySink::failing(&[("event-0", Failure::Retryable)]);
    let gateway = start(sink.clone()).await;
    let mut client = gateway.client().await;
    let status = client
        .record_event(unary(Some(managed()), true, Some(SERVICE_TOKEN)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().starts_with("failed to publish event: "),
        "{}",
        status.message()
    );
    // An invalid event fails the same way (nothing is published).
    let mut request = unary(Some(managed()), true, Some(SERVICE_TOKEN));
    request.get_mut().event.as_mut().unwrap().id = "other".to_owned();
    request.get_mut().event.as_mut().unwrap().feature = "Bad Feature".to_owned();
    let status = client.record_event(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status
            .message()
            .starts_with("failed to publish event: invalid event: event feature"),
        "{}",
        status.message()
    );
    assert!(sink.ids().is_empty());
}

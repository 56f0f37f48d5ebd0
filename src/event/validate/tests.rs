//! Tests of [`super`]: the rules, the limits and the defaults.

use super::*;
use crate::proto::telemetrygateway::v1::EventParameters;
use prost_types::ListValue;

fn valid_event() -> Event {
    Event {
        id: "id-1".into(),
        timestamp: Some(Timestamp {
            seconds: 1_677_250_110,
            nanos: 0,
        }),
        feature: "cody.completion".into(),
        action: "accepted".into(),
        ..Default::default()
    }
}

fn with_private(s: Struct) -> Event {
    Event {
        parameters: Some(EventParameters {
            private_metadata: Some(s),
            ..Default::default()
        }),
        ..valid_event()
    }
}

/// `{"k": {"k": ... "leaf" ...}}` with `depth` objects in all.
fn nested(depth: usize) -> Struct {
    let mut s = Struct {
        fields: [(
            "k".to_owned(),
            Value {
                kind: Some(Kind::StringValue("leaf".into())),
            },
        )]
        .into(),
    };
    for _ in 1..depth {
        s = Struct {
            fields: [(
                "k".to_owned(),
                Value {
                    kind: Some(Kind::StructValue(s)),
                },
            )]
            .into(),
        };
    }
    s
}

#[test]
fn valid_feature_and_action_pass() {
    validate_feature_action("cody.completion", "accepted").unwrap();
    validate_feature_action("cody.chat-question", "submitted").unwrap();
    validate_feature_action("ab", "cD.e-F").unwrap();
}

#[test]
fn feature_and_action_are_both_required() {
    assert_eq!(
        validate_feature_action("", "a"),
        Err(ValidationError::Missing {
            field: EventField::Feature
        })
    );
    assert_eq!(
        validate_feature_action("feature", "")
            .unwrap_err()
            .to_string(),
        "event action is required"
    );
}

#[test]
fn sixty_four_bytes_are_accepted_and_sixty_five_refused() {
    let at_limit = "a".repeat(64);
    validate_feature_action(&at_limit, &at_limit).unwrap();
    let over = "a".repeat(65);
    let err = validate_feature_action("feature", &over).unwrap_err();
    assert_eq!(
        err,
        ValidationError::TooLong {
            field: EventField::Action,
            limit: 64,
            actual: 65
        }
    );
    assert_eq!(
        err.to_string(),
        "event action is 65 bytes long, over the limit of 64 bytes"
    );
}

#[test]
fn lengths_are_checked_before_formats() {
    let err = validate_feature_action("Bad", &"a".repeat(65)).unwrap_err();
    assert!(matches!(err, ValidationError::TooLong { .. }), "{err}");
}

#[test]
fn formats_outside_the_pattern_are_refused_with_the_reason() {
    let cases = [
        ("a", FormatProblem::TooShort),
        (
            "CodeSearch",
            FormatProblem::FirstNotLowercase { found: 'C' },
        ),
        (".cody", FormatProblem::FirstNotLowercase { found: '.' }),
        (
            "cody2",
            FormatProblem::InvalidChar {
                found: '2',
                offset: 4,
            },
        ),
        (
            "cody_x",
            FormatProblem::InvalidChar {
                found: '_',
                offset: 4,
            },
        ),
        (
            "co dy",
            FormatProblem::InvalidChar {
                found: ' ',
                offset: 2,
            },
        ),
        (
            "codé",
            FormatProblem::InvalidChar {
                found: 'é',
                offset: 3,
            },
        ),
        (
            "cody\n",
            FormatProblem::InvalidChar {
                found: '\n',
                offset: 4,
            },
        ),
    ];
    for (value, problem) in cases {
        assert_eq!(
            validate_feature_action(value, "action"),
            Err(ValidationError::BadFormat {
                field: EventField::Feature,
                value: value.into(),
                problem
            }),
            "{value:?}"
        );
    }
    assert_eq!(
        validate_feature_action("feature", "Search")
            .unwrap_err()
            .to_string(),
        "event action \"Search\" is invalid: it must start with a lowercase letter, not 'S' \
         (it must start with a lowercase letter and contain only letters, '-' and '.')"
    );
}

#[test]
fn a_complete_event_passes_gateway_validation() {
    validate_event(&valid_event(), &Limits::default()).unwrap();
}

#[test]
fn gateway_validation_requires_id_and_timestamp() {
    let e = Event {
        id: String::new(),
        ..valid_event()
    };
    assert_eq!(
        validate_event(&e, &Limits::default()),
        Err(ValidationError::Missing {
            field: EventField::Id
        })
    );
    let e = Event {
        timestamp: None,
        ..valid_event()
    };
    assert_eq!(
        validate_event(&e, &Limits::default())
            .unwrap_err()
            .to_string(),
        "event timestamp is required"
    );
}

#[test]
fn timestamps_outside_the_protobuf_range_are_refused() {
    for (seconds, nanos) in [
        (MAX_TIMESTAMP_SECONDS + 1, 0),
        (MIN_TIMESTAMP_SECONDS - 1, 0),
        (0, -1),
        (0, 1_000_000_000),
    ] {
        let e = Event {
            timestamp: Some(Timestamp { seconds, nanos }),
            ..valid_event()
        };
        assert_eq!(
            validate_event(&e, &Limits::default()),
            Err(ValidationError::TimestampOutOfRange { seconds, nanos })
        );
    }
    let e = Event {
        timestamp: Some(Timestamp {
            seconds: MAX_TIMESTAMP_SECONDS,
            nanos: 999_999_999,
        }),
        ..valid_event()
    };
    validate_event(&e, &Limits::default()).unwrap();
}

#[test]
fn flat_private_metadata_is_depth_one_and_each_nesting_adds_one() {
    assert_eq!(struct_depth(&Struct::default()), 1);
    assert_eq!(struct_depth(&nested(1)), 1);
    assert_eq!(struct_depth(&nested(3)), 3);
    let list_of_struct = Struct {
        fields: [(
            "l".to_owned(),
            Value {
                kind: Some(Kind::ListValue(ListValue {
                    values: vec![Value {
                        kind: Some(Kind::StructValue(Struct::default())),
                    }],
                })),
            },
        )]
        .into(),
    };
    assert_eq!(struct_depth(&list_of_struct), 3);
}

#[test]
fn nesting_at_the_limit_passes_and_one_more_level_is_refused() {
    let limits = Limits::default();
    validate_event(&with_private(nested(64)), &limits).unwrap();
    let err = validate_event(&with_private(nested(65)), &limits).unwrap_err();
    assert_eq!(
        err,
        ValidationError::TooDeep {
            limit: 64,
            actual: 65
        }
    );
    assert_eq!(
        err.to_string(),
        "event private metadata is nested 65 levels deep, over the limit of 64 (max_depth)"
    );
}

#[test]
fn very_deep_nesting_is_measured_without_recursion() {
    let deep = nested(100_000);
    assert_eq!(struct_depth(&deep), 100_000);
    // Dropping a deep prost value recurses; tear it down by hand.
    let mut next = Some(deep);
    while let Some(mut s) = next.take() {
        next = match s.fields.remove("k").and_then(|v| v.kind) {
            Some(Kind::StructValue(inner)) => Some(inner),
            _ => None,
        };
    }
}

#[test]
fn encoded_size_over_the_limit_is_refused_naming_both_sizes() {
    let limits = Limits {
        max_event_bytes: 100,
        ..Limits::default()
    };
    let e = Event {
        id: "x".repeat(100),
        ..valid_event()
    };
    let actual = e.encoded_len();
    assert_eq!(
        validate_event(&e, &limits),
        Err(ValidationError::TooLarge { limit: 100, actual })
    );
    let fits = Limits {
        max_event_bytes: actual,
        ..limits
    };
    validate_event(&e, &fits).unwrap();
}

#[test]
fn default_limits_are_one_mebibyte_ten_thousand_events_and_depth_sixty_four() {
    assert_eq!(
        Limits::default(),
        Limits {
            max_event_bytes: 1_048_576,
            max_events: 10_000,
            max_depth: 64
        }
    );
}

#[test]
fn more_events_than_the_limit_are_refused() {
    let limits = Limits::default();
    check_event_count(10_000, &limits).unwrap();
    assert_eq!(
        check_event_count(10_001, &limits).unwrap_err().to_string(),
        "10001 events in one request, over the limit of 10000 (max_events)"
    );
}

#[test]
fn sidecar_fills_a_missing_id_and_timestamp_before_validating() {
    let mut e = Event {
        id: String::new(),
        timestamp: None,
        ..valid_event()
    };
    prepare_event(
        &mut e,
        UnixNanos(1_500_000_000),
        || "injected".into(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(e.id, "injected");
    assert_eq!(
        e.timestamp,
        Some(Timestamp {
            seconds: 1,
            nanos: 500_000_000
        })
    );
}

#[test]
fn fill_defaults_keeps_an_existing_id_and_timestamp_and_does_not_call_the_generator() {
    let mut e = valid_event();
    fill_defaults(&mut e, UnixNanos(0), || panic!("generator called"));
    assert_eq!(e, valid_event());
}

#[test]
fn generated_ids_are_uuid_v7() {
    let id = new_event_id();
    let parsed = uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(parsed.get_version_num(), 7);
    assert_eq!(id.len(), 36);
}

#[test]
fn sidecar_still_refuses_invalid_feature_names() {
    let mut e = Event {
        feature: "CodeSearch".into(),
        ..valid_event()
    };
    let err = prepare_event(&mut e, UnixNanos(0), new_event_id, &Limits::default()).unwrap_err();
    assert!(matches!(err, ValidationError::BadFormat { .. }), "{err}");
}

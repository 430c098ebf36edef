use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use opcua::types::{
    Array, ByteString, DataChangeNotification, DataValue, DateTime as UaDateTime, ExtensionObject,
    LocalizedText, MonitoredItemNotification, NodeId, StatusChangeNotification, StatusCode,
    UAString, Variant, VariantScalarTypeId,
};
use tokio::sync::mpsc;

use model::{
    Area, Category, Climate, Costs, DataType, Equipment, Line, NodeAddress, NodeIdentifier,
    Quality, Sample, Signal, Site, Tag, Value,
};

use super::{
    continuity::{ClosedGap, Continuity},
    convert::{node_id, to_sample, ua_time, value_to_variant, variant_to_value},
    notifications::{missing_before, Converter, Gap, Notifications},
    placement::{
        place, ItemServer, Limits, Slot, Wanted, DEFAULT_PER_CALL, DEFAULT_PER_SUBSCRIPTION,
        MAX_PER_CALL,
    },
    ConnectorError, OpcUaSource, SourceOptions, SourceStatus,
};

fn tag(signal: &str) -> Arc<Tag> {
    Arc::new(Tag {
        site: "sichuan".into(),
        area: "osd".into(),
        line: "line-1".into(),
        equipment: "dryer-01".into(),
        signal: signal.into(),
        category: Category::Machine,
        unit: "°C".into(),
    })
}

// ---- Variant → Value ------------------------------------------------------------------

#[test]
fn numbers_stay_numbers_and_the_rest_becomes_text() {
    let cases: Vec<(Variant, Option<Value>)> = vec![
        (Variant::Empty, None),
        (Variant::Boolean(true), Some(Value::Bool(true))),
        (Variant::SByte(-3), Some(Value::Int(-3))),
        (Variant::Byte(200), Some(Value::Int(200))),
        (Variant::Int16(-300), Some(Value::Int(-300))),
        (Variant::UInt16(60_000), Some(Value::Int(60_000))),
        (Variant::Int32(-70_000), Some(Value::Int(-70_000))),
        (
            Variant::UInt32(4_000_000_000),
            Some(Value::Int(4_000_000_000)),
        ),
        (Variant::Int64(i64::MIN), Some(Value::Int(i64::MIN))),
        (Variant::UInt64(42), Some(Value::Int(42))),
        (
            Variant::UInt64(u64::MAX),
            Some(Value::Text("18446744073709551615".into())),
        ),
        (Variant::Float(0.1), Some(Value::Float(0.1))),
        (Variant::Double(-1.25), Some(Value::Float(-1.25))),
        (
            Variant::String(UAString::from("EXECUTE")),
            Some(Value::Text("EXECUTE".into())),
        ),
        (
            Variant::String(UAString::null()),
            Some(Value::Text(String::new())),
        ),
        (
            Variant::LocalizedText(Box::new(LocalizedText::new("en", "Drying"))),
            Some(Value::Text("Drying".into())),
        ),
        (
            Variant::StatusCode(StatusCode::BadSensorFailure),
            Some(Value::Text("BadSensorFailure".into())),
        ),
        (
            Variant::ByteString(ByteString::from(vec![1u8, 2, 3])),
            Some(Value::Text("AQID".into())),
        ),
        (
            Variant::Variant(Box::new(Variant::Int32(7))),
            Some(Value::Int(7)),
        ),
    ];
    for (variant, expected) in cases {
        assert_eq!(variant_to_value(&variant), expected, "{variant:?}");
    }
    let t = Utc.with_ymd_and_hms(2024, 3, 1, 6, 30, 0).unwrap();
    assert_eq!(
        variant_to_value(&Variant::DateTime(Box::new(UaDateTime::from(t)))),
        Some(Value::Text("2024-03-01T06:30:00+00:00".into()))
    );
    let array = Array::new(
        VariantScalarTypeId::Int32,
        vec![Variant::Int32(1), Variant::Int32(2)],
    )
    .unwrap();
    assert_eq!(
        variant_to_value(&Variant::Array(Box::new(array))),
        Some(Value::Text("[1, 2]".into()))
    );
}

#[test]
fn float_noise_of_single_precision_is_not_invented() {
    assert_eq!(
        variant_to_value(&Variant::Float(21.7)),
        Some(Value::Float(21.7))
    );
    assert_eq!(
        variant_to_value(&Variant::Float(f32::INFINITY)),
        Some(Value::Float(f64::INFINITY))
    );
    match variant_to_value(&Variant::Float(f32::NAN)) {
        Some(Value::Float(f)) => assert!(f.is_nan()),
        other => panic!("{other:?}"),
    }
}

// ---- Value → Variant for writes ---------------------------------------------------------

#[test]
fn writes_take_the_shape_of_the_node_and_refuse_to_change_a_value() {
    let i32_node = Variant::Int32(0);
    assert_eq!(
        value_to_variant(&Value::Int(3), Some(&i32_node)),
        Ok(Variant::Int32(3))
    );
    assert_eq!(
        value_to_variant(&Value::Float(4.0), Some(&i32_node)),
        Ok(Variant::Int32(4))
    );
    assert!(value_to_variant(&Value::Float(4.5), Some(&i32_node))
        .unwrap_err()
        .contains("whole number"));
    assert!(value_to_variant(&Value::Int(1 << 40), Some(&i32_node))
        .unwrap_err()
        .contains("out of range"));
    assert!(value_to_variant(&Value::Int(-1), Some(&Variant::UInt16(0))).is_err());
    assert!(value_to_variant(&Value::Bool(true), Some(&i32_node)).is_err());

    assert_eq!(
        value_to_variant(&Value::Int(2), Some(&Variant::Double(0.0))),
        Ok(Variant::Double(2.0))
    );
    assert!(value_to_variant(&Value::Bool(true), Some(&Variant::Double(0.0))).is_err());
    assert_eq!(
        value_to_variant(&Value::Bool(false), Some(&Variant::Boolean(true))),
        Ok(Variant::Boolean(false))
    );
    assert!(value_to_variant(&Value::Int(1), Some(&Variant::Boolean(true))).is_err());
    assert_eq!(
        value_to_variant(&Value::Int(3), Some(&Variant::String(UAString::from("v2")))),
        Ok(Variant::String(UAString::from("3")))
    );
    let dt = value_to_variant(
        &Value::Text("2024-03-01T06:30:00Z".into()),
        Some(&Variant::DateTime(Box::default())),
    )
    .unwrap();
    assert!(matches!(dt, Variant::DateTime(_)));
    assert!(value_to_variant(
        &Value::Text("soon".into()),
        Some(&Variant::DateTime(Box::default()))
    )
    .is_err());

    // Without a current value: the natural mapping.
    assert_eq!(
        value_to_variant(&Value::Int(5), None),
        Ok(Variant::Int64(5))
    );
    assert_eq!(
        value_to_variant(&Value::Float(0.5), Some(&Variant::Empty)),
        Ok(Variant::Double(0.5))
    );
    assert_eq!(
        value_to_variant(&Value::Text("A".into()), None),
        Ok(Variant::String(UAString::from("A")))
    );
}

#[test]
fn node_ids_take_the_index_of_the_session() {
    let a: NodeAddress = "nsu=urn:pharmatwin:site:sichuan;s=line-1.dryer-01.temp"
        .parse()
        .unwrap();
    assert_eq!(node_id(&a, 3), NodeId::new(3, "line-1.dryer-01.temp"));
    let n = NodeAddress {
        namespace_uri: "urn:x".into(),
        identifier: NodeIdentifier::Numeric(2001),
    };
    assert_eq!(node_id(&n, 2), NodeId::new(2, 2001u32));
}

// ---- DataValue → Sample --------------------------------------------------------------

fn dv(value: Option<Variant>, status: Option<StatusCode>) -> DataValue {
    DataValue {
        value,
        status,
        ..Default::default()
    }
}

#[test]
fn source_time_falls_back_to_server_time_then_receive_time() {
    let t = tag("temp");
    let received = Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 5).unwrap();
    let source = Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 0).unwrap();
    let server = Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 1).unwrap();

    let mut with_both = dv(Some(Variant::Double(60.5)), None);
    with_both.source_timestamp = Some(source.into());
    with_both.server_timestamp = Some(server.into());
    let s = to_sample(&t, with_both, received);
    assert_eq!(
        (s.source_ts, s.server_ts, s.received_ts),
        (source, Some(server), received)
    );
    assert_eq!(s.quality, Quality::GOOD, "an absent status is Good");
    assert!(Arc::ptr_eq(&s.tag, &t));

    let mut server_only = dv(Some(Variant::Double(60.5)), None);
    server_only.server_timestamp = Some(server.into());
    server_only.source_timestamp = Some(UaDateTime::null()); // null means absent
    let s = to_sample(&t, server_only, received);
    assert_eq!((s.source_ts, s.server_ts), (server, Some(server)));

    let s = to_sample(&t, dv(Some(Variant::Double(1.0)), None), received);
    assert_eq!((s.source_ts, s.server_ts), (received, None));
}

#[test]
fn times_outside_the_storable_range_count_as_absent() {
    let far = UaDateTime::ymd(1650, 1, 1);
    assert_eq!(ua_time(Some(&far)), None);
    assert_eq!(ua_time(Some(&UaDateTime::null())), None);
    assert_eq!(ua_time(None), None);
    let ok = UaDateTime::ymd(2030, 1, 1);
    assert!(ua_time(Some(&ok)).is_some());
}

#[test]
fn bad_and_uncertain_values_keep_their_status_and_a_missing_value_is_never_invented() {
    let t = tag("temp");
    let now = Utc::now();
    let uncertain = StatusCode::UncertainLastUsableValue;
    let s = to_sample(&t, dv(Some(Variant::Double(59.0)), Some(uncertain)), now);
    assert_eq!(s.quality, Quality(uncertain.bits()));
    assert!(s.quality.is_uncertain());
    assert_eq!(s.value, Value::Float(59.0));

    let bad = StatusCode::BadSensorFailure;
    let s = to_sample(&t, dv(Some(Variant::Double(0.0)), Some(bad)), now);
    assert!(s.quality.is_bad(), "a bad value is kept, marked bad");

    let mut offline = dv(None, Some(StatusCode::BadCommunicationError));
    let at = Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 0).unwrap();
    offline.source_timestamp = Some(at.into());
    let s = to_sample(&t, offline, now);
    assert_eq!(
        s.value,
        Value::Null,
        "no value is invented for a status without one"
    );
    assert_eq!(s.quality, Quality::BAD_COMMUNICATION_ERROR);
    assert_eq!(s.source_ts, at, "the status keeps its own source time");
    assert_eq!(
        to_sample(&t, dv(Some(Variant::Empty), None), now).value,
        Value::Null
    );
}

#[test]
fn a_notification_message_becomes_one_batch_and_is_counted() {
    let tags: Arc<[Arc<Tag>]> = vec![tag("a"), tag("b"), tag("c")].into();
    let status = Arc::new(SourceStatus::new());
    let (converter, _closed) = converter_of(
        tags.clone(),
        vec!["nsu=u;s=a".into(), "nsu=u;s=b".into(), "nsu=u;s=c".into()].into(),
        &status,
    );
    let item = |handle: u32, value: DataValue| MonitoredItemNotification {
        client_handle: handle,
        value,
    };
    let change = DataChangeNotification {
        monitored_items: Some(vec![
            item(1, dv(Some(Variant::Double(1.0)), None)),
            item(3, dv(Some(Variant::Int32(3)), None)),
            item(2, dv(None, Some(StatusCode::BadNotConnected))),
            item(99, dv(Some(Variant::Double(9.0)), None)), // unknown handle
        ]),
        diagnostic_infos: None,
    };
    let status_change = StatusChangeNotification {
        status: StatusCode::BadTimeout,
        diagnostic_info: Default::default(),
    };
    let received = Utc::now();
    let batch = converter.message(
        vec![
            ExtensionObject::from_message(change),
            ExtensionObject::from_message(status_change),
        ],
        received,
    );
    let got: Vec<(String, Value)> = batch
        .iter()
        .map(|s| (s.tag.signal.clone(), s.value.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a".into(), Value::Float(1.0)),
            ("c".into(), Value::Int(3)),
            ("b".into(), Value::Null)
        ]
    );
    assert_eq!(batch[2].quality.0, StatusCode::BadNotConnected.bits());

    let snap = status.snapshot();
    assert_eq!(snap.notifications, 4);
    assert_eq!(snap.last_notification, Some(received));
    assert_eq!(snap.valueless.len(), 1);
    assert_eq!(snap.valueless[0].tag, tags[1].path());
    assert!(snap.last_error.unwrap_or_default().contains("BadTimeout"));

    // A later value clears the valueless status; nothing was carried forward meanwhile.
    let change = DataChangeNotification {
        monitored_items: Some(vec![item(2, dv(Some(Variant::Double(2.0)), None))]),
        diagnostic_infos: None,
    };
    converter.message(vec![ExtensionObject::from_message(change)], Utc::now());
    assert!(status.snapshot().valueless.is_empty());
}

#[test]
fn a_node_the_server_reports_unusable_becomes_a_tag_error_until_it_delivers() {
    let tags: Arc<[Arc<Tag>]> = vec![tag("ghost")].into();
    let status = Arc::new(SourceStatus::new());
    let (converter, _closed) =
        converter_of(tags.clone(), vec!["nsu=u;s=ghost".into()].into(), &status);
    let notify = |value: DataValue| {
        let change = DataChangeNotification {
            monitored_items: Some(vec![MonitoredItemNotification {
                client_handle: 1,
                value,
            }]),
            diagnostic_infos: None,
        };
        converter.message(vec![ExtensionObject::from_message(change)], Utc::now())
    };
    assert!(notify(dv(None, Some(StatusCode::BadNodeIdUnknown))).is_empty());
    let errors = status.snapshot().tag_errors;
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (
            errors[0].tag.as_str(),
            errors[0].node.as_str(),
            errors[0].status.as_str()
        ),
        (tags[0].path().as_str(), "nsu=u;s=ghost", "BadNodeIdUnknown")
    );
    assert_eq!(notify(dv(Some(Variant::Double(1.0)), None)).len(), 1);
    assert!(
        status.snapshot().tag_errors.is_empty(),
        "a delivering tag is flowing"
    );
}

// ---- sequence numbers ----------------------------------------------------------------

#[test]
fn sequence_gaps_are_found_across_the_wrap() {
    assert_eq!(missing_before(None, 7), None);
    assert_eq!(missing_before(Some(6), 7), None);
    assert_eq!(missing_before(Some(6), 9), Some((7, 2)));
    assert_eq!(
        missing_before(Some(9), 7),
        None,
        "an older message is no gap"
    );
    assert_eq!(missing_before(Some(u32::MAX), 1), None);
    assert_eq!(missing_before(Some(u32::MAX - 1), 2), Some((u32::MAX, 2)));
}

#[test]
fn a_skipped_message_asks_for_a_republish() {
    let status = Arc::new(SourceStatus::new());
    let (converter, _closed) = converter_of(
        vec![tag("a")].into(),
        vec!["nsu=u;s=a".into()].into(),
        &status,
    );
    let (samples, _samples_rx) = mpsc::unbounded_channel();
    let (gaps, mut gaps_rx) = mpsc::unbounded_channel();
    let (mut callback, id) = Notifications::new(converter, samples, gaps);
    id.store(5, std::sync::atomic::Ordering::Relaxed);
    callback.check_sequence(1);
    callback.check_sequence(2);
    assert!(gaps_rx.try_recv().is_err());
    callback.check_sequence(5);
    assert_eq!(
        gaps_rx.try_recv().unwrap(),
        Gap {
            subscription: 5,
            first: 3,
            count: 2
        }
    );
    callback.check_sequence(6);
    assert!(gaps_rx.try_recv().is_err());
    assert_eq!(status.snapshot().sequence_gaps, 2);
}

// ---- placing monitored items ---------------------------------------------------------

/// A server with async-opcua's shape of limits and some nodes it does not know.
struct FakeServer {
    per_call: usize,
    per_subscription: usize,
    max_subscriptions: usize,
    unknown: HashSet<u32>,
    subscriptions: Vec<usize>,
    calls: usize,
    fail_calls_after: Option<usize>,
}

impl FakeServer {
    fn new(per_call: usize, per_subscription: usize) -> Self {
        FakeServer {
            per_call,
            per_subscription,
            max_subscriptions: 100,
            unknown: HashSet::new(),
            subscriptions: Vec::new(),
            calls: 0,
            fail_calls_after: None,
        }
    }
}

#[async_trait::async_trait]
impl ItemServer for FakeServer {
    async fn create_subscription(&mut self) -> Result<u32, StatusCode> {
        if self.subscriptions.len() >= self.max_subscriptions {
            return Err(StatusCode::BadTooManySubscriptions);
        }
        self.subscriptions.push(0);
        Ok(self.subscriptions.len() as u32)
    }

    async fn create_items(
        &mut self,
        subscription: u32,
        items: &[Wanted],
    ) -> Result<Vec<StatusCode>, StatusCode> {
        self.calls += 1;
        if self.fail_calls_after.is_some_and(|n| self.calls > n) {
            return Err(StatusCode::BadConnectionClosed);
        }
        if items.len() > self.per_call {
            return Err(StatusCode::BadTooManyOperations);
        }
        let held = &mut self.subscriptions[subscription as usize - 1];
        if *held + items.len() > self.per_subscription {
            return Err(StatusCode::BadTooManyMonitoredItems);
        }
        Ok(items
            .iter()
            .map(|w| {
                if self.unknown.contains(&w.handle) {
                    StatusCode::BadNodeIdUnknown
                } else {
                    *held += 1;
                    StatusCode::Good
                }
            })
            .collect())
    }
}

fn wanted(n: u32) -> Vec<Wanted> {
    (1..=n)
        .map(|h| Wanted {
            handle: h,
            node: NodeId::new(2, h),
        })
        .collect()
}

#[test]
fn limits_default_when_the_server_does_not_say() {
    let d = Limits::default();
    assert_eq!(d.per_call, DEFAULT_PER_CALL);
    assert_eq!(d.per_subscription, Some(DEFAULT_PER_SUBSCRIPTION));
    assert_eq!(Limits::from_server(Some(0), Some(0), d), d);
    assert_eq!(Limits::from_server(Some(200), None, d).per_call, 200);
    assert_eq!(
        Limits::from_server(Some(50_000), None, d).per_call,
        MAX_PER_CALL
    );
    let published = Limits::from_server(None, Some(5_000), d);
    assert_eq!(published.per_subscription, Some(5_000));
    assert!(published.per_subscription_known);
    let learned = Limits {
        per_call: 250,
        per_subscription: Some(300),
        per_subscription_known: true,
    };
    assert_eq!(
        Limits::from_server(None, None, learned),
        learned,
        "what was learned holds"
    );
}

#[tokio::test]
async fn thousands_of_items_spread_over_subscriptions_within_unpublished_limits() {
    let mut server = FakeServer::new(300, 1_000);
    server.unknown = [7, 1_500, 2_499].into_iter().collect();
    // Nothing known: the placement must learn both limits from refusals.
    let mut limits = Limits {
        per_call: DEFAULT_PER_CALL,
        per_subscription: None,
        per_subscription_known: false,
    };
    let mut slots = Vec::new();
    let out = place(&mut server, &mut limits, &mut slots, wanted(2_500)).await;

    assert_eq!(out.aborted, None);
    assert_eq!(out.created.len(), 2_497);
    let failed: Vec<(u32, StatusCode)> = out.failed.clone();
    assert_eq!(
        failed,
        vec![
            (7, StatusCode::BadNodeIdUnknown),
            (1_500, StatusCode::BadNodeIdUnknown),
            (2_499, StatusCode::BadNodeIdUnknown)
        ]
    );
    assert!(limits.per_call <= 300);
    assert!(slots.iter().all(|s| s.items <= 1_000));
    assert_eq!(slots.iter().map(|s| s.items).sum::<usize>(), 2_497);
    assert_eq!(slots.len(), 3);
    assert_eq!(
        server.subscriptions,
        slots.iter().map(|s| s.items).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn published_limits_are_used_from_the_start() {
    let mut server = FakeServer::new(1_000, 1_000);
    let mut limits = Limits::from_server(Some(1_000), Some(1_000), Limits::default());
    let mut slots = Vec::new();
    let out = place(&mut server, &mut limits, &mut slots, wanted(2_000)).await;
    assert_eq!(out.created.len(), 2_000);
    assert_eq!(server.calls, 2, "no refused call when the limits are known");
    assert_eq!(slots.len(), 2);
}

#[tokio::test]
async fn later_placements_fill_existing_subscriptions_first() {
    let mut server = FakeServer::new(500, 1_000);
    let mut limits = Limits::from_server(Some(500), Some(1_000), Limits::default());
    let mut slots = Vec::new();
    place(&mut server, &mut limits, &mut slots, wanted(900)).await;
    let more: Vec<Wanted> = (901..=1_200)
        .map(|h| Wanted {
            handle: h,
            node: NodeId::new(2, h),
        })
        .collect();
    let out = place(&mut server, &mut limits, &mut slots, more).await;
    assert_eq!(out.created.len(), 300);
    assert_eq!(
        slots,
        vec![
            Slot {
                id: 1,
                items: 1_000,
                full: false
            },
            Slot {
                id: 2,
                items: 200,
                full: false
            }
        ]
    );
}

#[tokio::test]
async fn a_failed_call_reports_the_rest_for_a_later_retry() {
    let mut server = FakeServer::new(500, 10_000);
    server.fail_calls_after = Some(1);
    let mut limits = Limits {
        per_call: 500,
        per_subscription: None,
        per_subscription_known: false,
    };
    let mut slots = Vec::new();
    let out = place(&mut server, &mut limits, &mut slots, wanted(1_200)).await;
    assert_eq!(out.created.len(), 500);
    assert_eq!(out.failed.len(), 700);
    assert_eq!(out.aborted, Some(StatusCode::BadConnectionClosed));

    let mut server = FakeServer::new(500, 10);
    server.max_subscriptions = 1;
    let mut limits = Limits {
        per_call: DEFAULT_PER_CALL,
        per_subscription: None,
        per_subscription_known: false,
    };
    let mut slots = Vec::new();
    let out = place(&mut server, &mut limits, &mut slots, wanted(25)).await;
    assert_eq!(
        out.created.len(),
        10,
        "the one subscription is filled to its limit"
    );
    assert_eq!(limits.per_subscription, Some(10));
    assert_eq!(out.aborted, Some(StatusCode::BadTooManySubscriptions));
    assert_eq!(out.failed.len(), 15);
}

#[tokio::test]
async fn an_assumed_subscription_size_gives_way_when_subscriptions_run_out() {
    // Two subscriptions of 1,500 items: the assumed 1,000 per subscription would leave
    // 1,000 tags out.
    let mut server = FakeServer::new(1_000, 1_500);
    server.max_subscriptions = 2;
    let mut limits = Limits::default();
    let mut slots = Vec::new();
    let out = place(&mut server, &mut limits, &mut slots, wanted(3_000)).await;
    assert_eq!(out.created.len(), 3_000);
    assert_eq!(out.aborted, None);
    assert_eq!(server.subscriptions, vec![1_500, 1_500]);

    // Once the limit is known, running out of subscriptions is final.
    let more: Vec<Wanted> = vec![Wanted {
        handle: 3_001,
        node: NodeId::new(2, 3_001u32),
    }];
    let out = place(&mut server, &mut limits, &mut slots, more).await;
    assert_eq!(out.aborted, Some(StatusCode::BadTooManySubscriptions));
}

// ---- options and the source itself ----------------------------------------------------

#[test]
fn options_that_would_fail_silently_are_refused_by_name() {
    assert!(SourceOptions::default().validate().is_ok());
    let small = SourceOptions {
        max_array_length: 1_000,
        ..Default::default()
    };
    match small.validate() {
        Err(ConnectorError::Options { key, .. }) => assert_eq!(key, "max_array_length"),
        other => panic!("{other:?}"),
    }
    let no_queue = SourceOptions {
        queue_size: 0,
        ..Default::default()
    };
    assert!(no_queue.validate().is_err());
}

fn site(endpoint: &str, signals: usize) -> Arc<Site> {
    let signals = (0..signals)
        .map(|i| {
            let t = tag(&format!("s{i}"));
            Signal {
                id: t.signal.clone(),
                description: String::new(),
                category: Category::Machine,
                unit: t.unit.clone(),
                data_type: DataType::Double,
                node: NodeAddress {
                    namespace_uri: "urn:pharmatwin:site:sichuan".into(),
                    identifier: NodeIdentifier::String(format!("line-1.dryer-01.s{i}")),
                },
                limits: None,
                spec: None,
                monitoring: Default::default(),
                tag: t,
            }
        })
        .collect();
    Arc::new(Site {
        id: "sichuan".into(),
        name: "Sichuan".into(),
        enterprise: "pharma-group".into(),
        namespace_uri: "urn:pharmatwin:site:sichuan".into(),
        endpoint: endpoint.into(),
        climate: Climate::default(),
        costs: Costs::default(),
        areas: vec![Area {
            id: "osd".into(),
            name: String::new(),
        }],
        lines: vec![Line {
            id: "line-1".into(),
            name: String::new(),
            area: "osd".into(),
            equipment: vec![Equipment {
                id: "dryer-01".into(),
                name: String::new(),
                kind: None,
                room: None,
                grade: None,
                maker: None,
                serial: None,
                installed: None,
                signals,
            }],
        }],
        security: Default::default(),
        origin: "test".into(),
    })
}

/// A loopback port nothing listens on: connections are refused at once.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::test]
async fn an_unreachable_server_is_retried_and_reported_until_shutdown() {
    let endpoint = &format!("opc.tcp://127.0.0.1:{}/pharmatwin", closed_port());
    let source = OpcUaSource::new(
        site(endpoint, 3),
        SourceOptions {
            reconnect_initial_ms: 50,
            reconnect_max_ms: 100,
            pki_dir: Some(std::env::temp_dir().join("pharmatwin-test-pki")),
            ..Default::default()
        },
    );
    let status = Arc::new(SourceStatus::new());
    let (tx, _rx) = mpsc::channel(8);
    let run = assert_send(source.run_until(
        tx,
        status.clone(),
        tokio::time::sleep(Duration::from_millis(600)),
    ));
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("shutdown is honoured while connecting")
        .expect("an unreachable server is not an error of the source");
    let snap = status.snapshot();
    assert_eq!(&snap.endpoint, endpoint);
    assert_eq!(snap.signals, 3);
    assert!(!snap.connected);
    let error = snap.last_error.unwrap_or_default();
    assert!(error.contains(endpoint), "{error}");
}

#[tokio::test]
async fn the_source_stops_when_downstream_is_gone() {
    let source = OpcUaSource::new(
        site(&format!("opc.tcp://127.0.0.1:{}/", closed_port()), 1),
        SourceOptions {
            pki_dir: Some(std::env::temp_dir().join("pharmatwin-test-pki")),
            ..Default::default()
        },
    );
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        source.run(tx, Arc::new(SourceStatus::new())),
    )
    .await
    .expect("stops without a receiver");
    assert!(r.is_ok());
}

#[tokio::test]
async fn one_shot_calls_name_the_endpoint_they_could_not_reach() {
    let node: NodeAddress = "nsu=urn:x;s=y".parse().unwrap();
    let endpoint = format!("opc.tcp://127.0.0.1:{}/", closed_port());
    let err = super::read_value(&endpoint, &node).await.unwrap_err();
    assert!(err.to_string().contains(&endpoint), "{err}");
    let err = super::write_value(&endpoint, &node, &Value::Int(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Unreachable { .. }), "{err:?}");
}

/// A converter of `tags` whose closed gaps come out of the returned receiver; no tag has a
/// stale limit.
fn converter_of(
    tags: Arc<[Arc<Tag>]>,
    nodes: Arc<[String]>,
    status: &Arc<SourceStatus>,
) -> (Converter, mpsc::UnboundedReceiver<ClosedGap>) {
    let (closed, rx) = mpsc::unbounded_channel();
    let continuity = Arc::new(Continuity::new(
        vec![None; tags.len()],
        vec![Duration::from_secs(1); tags.len()],
        Duration::from_secs(5),
        closed,
    ));
    (
        Converter {
            tags,
            nodes,
            status: status.clone(),
            continuity,
        },
        rx,
    )
}

fn at_ms(ms: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
}

fn valued(ms: i64, status: Option<StatusCode>) -> DataValue {
    let mut v = dv(Some(Variant::Double(ms as f64)), status);
    v.source_timestamp = Some(at_ms(ms).into());
    v.server_timestamp = Some(at_ms(ms).into());
    v
}

fn notify(converter: &Converter, values: Vec<DataValue>) -> Vec<Sample> {
    let change = DataChangeNotification {
        monitored_items: Some(
            values
                .into_iter()
                .map(|value| MonitoredItemNotification {
                    client_handle: 1,
                    value,
                })
                .collect(),
        ),
        diagnostic_infos: None,
    };
    converter.message(vec![ExtensionObject::from_message(change)], Utc::now())
}

#[test]
fn an_overflowed_value_closes_a_gap_from_the_last_value_before_it() {
    let status = Arc::new(SourceStatus::new());
    let (converter, mut closed) = converter_of(
        vec![tag("counter")].into(),
        vec!["nsu=u;s=c".into()].into(),
        &status,
    );
    notify(&converter, vec![valued(100, None), valued(200, None)]);
    assert!(closed.try_recv().is_err(), "no gap in a whole stream");
    // Values 300..=700 were discarded by a full queue; async-opcua flags the newest value
    // of the queue (the spec the oldest left): the gap ends at the message's first value.
    let overflow = StatusCode::from(StatusCode::Good.bits() | 0x480);
    let batch = notify(
        &converter,
        vec![valued(800, None), valued(900, Some(overflow))],
    );
    assert_eq!(batch.len(), 2, "the overflowed value itself is kept");
    let gap = closed.try_recv().expect("a gap record");
    assert_eq!((gap.index, gap.from, gap.to), (0, at_ms(200), at_ms(800)));
    assert!(gap.reason.contains("overflow"), "{}", gap.reason);
    assert!(closed.try_recv().is_err());
    assert_eq!(status.snapshot().overflows, 1);
}

#[test]
fn an_opened_gap_closes_at_the_next_newer_value_and_never_for_a_tag_without_history() {
    let status = Arc::new(SourceStatus::new());
    let tags: Arc<[Arc<Tag>]> = vec![tag("a"), tag("b")].into();
    let (converter, mut closed) = converter_of(
        tags,
        vec!["nsu=u;s=a".into(), "nsu=u;s=b".into()].into(),
        &status,
    );
    notify(&converter, vec![valued(100, None)]);
    let opened = converter.continuity.open([0, 1], "connection lost");
    assert_eq!(opened, 1, "b never had a value: nothing to continue");
    assert_eq!(converter.continuity.open_gaps(), 1);
    // A late value from before the gap does not close it.
    notify(&converter, vec![valued(50, None)]);
    assert!(closed.try_recv().is_err());
    notify(&converter, vec![valued(5_000, None)]);
    let gap = closed.try_recv().unwrap();
    assert_eq!(
        (gap.from, gap.to, gap.reason.as_str()),
        (at_ms(100), at_ms(5_000), "connection lost")
    );
    assert_eq!(converter.continuity.open_gaps(), 0);

    // Silence past the keep-alive interval opens gaps for the subscription's tags whose
    // queues cover less; a silence within it is a quiet server, not a lost one.
    converter.continuity.assign(0, Some(7));
    converter.continuity.assign(1, Some(8));
    notify(&converter, vec![valued(6_000, None)]);
    assert_eq!(
        converter
            .continuity
            .after_silence(7, Duration::from_secs(4), at_ms(10_000)),
        0
    );
    assert_eq!(
        converter
            .continuity
            .after_silence(7, Duration::from_secs(9), at_ms(15_000)),
        1
    );
    assert_eq!(converter.continuity.open_gaps(), 1);
}

/// After a cut, the message that ends the silence carries what the item's queue kept (its
/// last second here), however late it reaches a busy client: the gap runs from the last
/// value before the silence to the queue's oldest, and values sent before the silence that
/// arrive late only move its start.
#[test]
fn a_silence_gap_ends_at_the_queue_s_oldest_value_by_the_server_s_publish_time() {
    let status = Arc::new(SourceStatus::new());
    let (converter, mut closed) = converter_of(
        vec![tag("a")].into(),
        vec!["nsu=u;s=a".into()].into(),
        &status,
    );
    converter.continuity.assign(0, Some(7));
    notify(&converter, vec![valued(100, None), valued(200, None)]);
    // Published at 20 s; it arrives whenever it does (the test runs years later).
    let opened = converter
        .continuity
        .after_silence(7, Duration::from_secs(19), at_ms(20_000));
    assert_eq!(opened, 1);
    // In transit since before the silence: contiguous with what came before.
    notify(&converter, vec![valued(300, None)]);
    assert!(
        closed.try_recv().is_err(),
        "a late value does not end the gap"
    );
    // The queue's kept values: 19.1 s to 20 s.
    notify(&converter, vec![valued(19_100, None), valued(20_000, None)]);
    let gap = closed.try_recv().expect("a gap record");
    assert_eq!((gap.from, gap.to), (at_ms(300), at_ms(19_100)));
    assert!(gap.reason.contains("no message"), "{}", gap.reason);
}

#[test]
fn a_tag_with_a_stale_limit_is_stale_once_silent_past_it_one_without_never() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let c = Continuity::new(
        vec![Some(Duration::from_secs(2)), None],
        vec![Duration::from_secs(1); 2],
        Duration::from_secs(5),
        tx,
    );
    let t = tag("x");
    let sample = |ms: i64| Sample {
        tag: t.clone(),
        value: Value::Float(1.0),
        quality: Quality::GOOD,
        source_ts: at_ms(ms),
        server_ts: None,
        received_ts: at_ms(ms),
        backfilled: false,
    };
    let s: Vec<Sample> = (0..5).map(|k| sample(k * 500)).collect();
    c.observe(s.iter().map(|s| (0, s)));
    c.observe(s.iter().map(|s| (1, s)));
    assert!(c.stale(at_ms(3_000)).is_empty(), "within the limit");
    assert_eq!(c.stale(at_ms(10_000)), vec![(0, at_ms(2_000))]);
    c.restart_updates();
    assert!(
        c.stale(at_ms(20_000)).is_empty(),
        "after a reconnect it must update again first"
    );
}

//! The live twin: the latest state of every signal, equipment, line and site.
//!
//! The twin reads the historian, never the plants: the store is the system of record, so the
//! twin can run in another process than the connectors and rebuilds itself after a restart by
//! reading the store again. Late or replayed data merge idempotently — a sample only replaces
//! the live value when its source time is newer.

mod alerts;
mod batches;
mod condition;
mod energy;
mod follow;
mod lifecycle;
mod live;
mod maintenance;
mod oee;
mod quality;
pub mod spc;
mod views;
pub mod work_orders;

pub use alerts::{AlertBoard, BoardAlert, BoardError, BoardKind, Shelf};
pub use batches::{BatchRecord, BatchRecorder, LabValue, ParamStats, PhaseSpan, SETTLED_SUFFIX};
pub use condition::{watched, ClosedWindow, ConditionMonitor, Driver, PartRisk, WATCHED};
pub use energy::{batch_cost, summarise, BatchCost, CostSummary, MeterReadings, ENERGY_SIGNAL};
pub use follow::{follow, FollowError};
pub use lifecycle::{
    Counters, Lifecycle, LifecycleRecord, LogError, MaintenanceLog, MaintenanceRecord,
};
pub use live::{LiveValue, Twin};
pub use maintenance::{
    Action, AlertError, AlertState, MaintenanceAlert, MaintenanceModels, MaintenanceWatch,
    Notification, Severity, TrainingWindow,
};
pub use oee::{Figures as OeeFigures, LineOee, SiteOee, TrendPoint};
pub use quality::{
    CqaPrediction, OutsideParameter, OutsideTraining, QualityError, QualityModels, ReleaseRisk,
    ReleaseWatch, MIN_TRAINING_BATCHES,
};
pub use views::{
    BatchView, CategoryCount, EquipmentView, LineView, RoomView, ShiftView, SignalView,
    SiteSummary, Snapshot,
};
pub use work_orders::{WorkDone, WorkKind, WorkOrder, WorkOrderError, WorkOrders, WorkRequest};

/// A value is fresh while its source time is younger than this.
pub const FRESH_SECS: i64 = 10;

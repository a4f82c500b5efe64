//! Where finished migrations are reported, off the migration path.
//!
//! - [`influx`]: one `pod_migration` point per finished migration, batched, bounded
//!   and retried in the background, to InfluxDB 2 or 1.x.

pub mod influx;

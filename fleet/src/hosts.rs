//! Reading the hosts table: for the owner (`Admin::hosts`) and for any
//! host (`FleetClient::status`).

use postgres::Transaction;

use crate::error::FleetError;
use crate::types::HostInfo;

/// The registered hosts, by name (hosts may read the table too).
pub(crate) fn list(tx: &mut Transaction<'_>) -> Result<Vec<HostInfo>, FleetError> {
    let rows = tx.query(
        "SELECT origin, quota, row_count, revoked FROM banset_fleet.hosts ORDER BY origin",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| HostInfo {
            name: crate::names::host_name(r.get(0)).to_owned(),
            quota: r.get(1),
            rows: r.get(2),
            revoked: r.get(3),
        })
        .collect())
}

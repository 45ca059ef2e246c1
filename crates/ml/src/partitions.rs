//! What every fit over partitions checks first: the partitions tile the table.

use crate::{MlError, Result};

/// Columns and total rows of a table cut into partitions given as (columns, first row, rows),
/// in order. Errors (naming `model`) when there are none, when their columns differ, or when
/// one does not start where the one before it ends (the first at row 0).
pub(crate) fn tile(model: &str, parts: impl IntoIterator<Item = (usize, usize, usize)>) -> Result<(usize, usize)> {
    let mut parts = parts.into_iter().enumerate().peekable();
    let Some(&(_, (d, _, _))) = parts.peek() else {
        return Err(MlError::InvalidInput(format!("{model}: no partitions")));
    };
    let mut next_row = 0;
    for (p, (cols, first_row, rows)) in parts {
        if cols != d {
            return Err(MlError::InvalidInput(format!(
                "{model}: partition {p} has {cols} columns, partition 0 has {d}"
            )));
        }
        if first_row != next_row {
            return Err(MlError::InvalidInput(format!(
                "{model}: partition {p} starts at row {first_row}, not {next_row} where the one before it ends"
            )));
        }
        next_row += rows;
    }
    Ok((d, next_row))
}

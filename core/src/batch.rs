//! The structured error of a partly failed batch: which entries failed and why, which were
//! never attempted. Every entry not named was sent.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// Which entries of a batch did not make it.
///
/// Indexes are positions in the caller's batch. `Producer::send_batch` shifts them across
/// chunks, so they always refer to the list the user passed.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchError {
    /// Entries the broker refused or that failed, with why; sorted by index.
    pub failed: Vec<(usize, Error)>,
    /// Entries never handed to the broker (e.g. after the connection broke); sorted.
    pub not_attempted: Vec<usize>,
    /// Size of the batch.
    pub total: usize,
}

impl BatchError {
    /// An empty report for a batch of `total` entries.
    pub fn new(total: usize) -> Self {
        BatchError {
            failed: Vec::new(),
            not_attempted: Vec::new(),
            total,
        }
    }

    /// Records entry `index` as failed.
    pub fn fail(&mut self, index: usize, error: Error) {
        self.failed.push((index, error));
    }

    /// Records entries as not attempted.
    pub fn skip(&mut self, indexes: impl IntoIterator<Item = usize>) {
        self.not_attempted.extend(indexes);
    }

    /// Whether nothing failed.
    pub fn is_empty(&self) -> bool {
        self.failed.is_empty() && self.not_attempted.is_empty()
    }

    /// Every index that was not sent, sorted.
    pub fn unsent(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self.failed.iter().map(|(i, _)| *i).collect();
        all.extend(&self.not_attempted);
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Moves every index by `offset` (the position of this chunk in a larger batch) and sets
    /// the total.
    pub fn shifted(mut self, offset: usize, total: usize) -> Self {
        for (i, _) in &mut self.failed {
            *i += offset;
        }
        for i in &mut self.not_attempted {
            *i += offset;
        }
        self.total = total;
        self
    }

    /// `Ok(())` when nothing failed, else the [`Error`] carrying this report as its source.
    pub fn into_result(mut self) -> crate::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        self.failed.sort_by_key(|(i, _)| *i);
        self.not_attempted.sort_unstable();
        let (kind, retryable) = match self.failed.first() {
            Some((_, e)) => (e.kind(), self.failed.iter().all(|(_, e)| e.is_retryable())),
            None => (ErrorKind::Unavailable, true),
        };
        Err(Error::new(kind, self.to_string())
            .retryable(retryable)
            .with_source(self))
    }

    /// The report inside `error`, when it is a batch failure.
    pub fn of(error: &Error) -> Option<&BatchError> {
        error.source_ref()?.downcast_ref::<BatchError>()
    }

    /// Takes the report out of `error`; gives the error back when it is not a batch failure.
    pub fn take(error: Error) -> Result<BatchError, Error> {
        error.take_source::<BatchError>()
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &mut dyn Iterator<Item = usize>| {
            v.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        };
        write!(
            f,
            "{} of {} batch entries failed",
            self.failed.len(),
            self.total
        )?;
        if !self.failed.is_empty() {
            write!(
                f,
                " (entries {})",
                list(&mut self.failed.iter().map(|(i, _)| *i))
            )?;
        }
        if !self.not_attempted.is_empty() {
            write!(
                f,
                ", {} not attempted (entries {})",
                self.not_attempted.len(),
                list(&mut self.not_attempted.iter().copied())
            )?;
        }
        f.write_str("; the others were sent")?;
        if let Some((_, first)) = self.failed.first() {
            write!(f, "; first: {}", first.message())?;
        }
        Ok(())
    }
}

impl std::error::Error for BatchError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_through_error_and_shifts() {
        let mut b = BatchError::new(4);
        b.fail(2, Error::new(ErrorKind::Rejected, "too big"));
        b.skip([3]);
        let e = b.into_result().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert_eq!(BatchError::of(&e).unwrap().unsent(), vec![2, 3]);
        let shifted = BatchError::take(e).unwrap().shifted(10, 20);
        assert_eq!(shifted.unsent(), vec![12, 13]);
        assert_eq!(shifted.total, 20);
        assert!(BatchError::take(Error::config("x")).is_err());
    }
}

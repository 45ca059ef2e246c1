//! The one way the models split work over threads: the caller cuts the work into jobs (each
//! owning its slices of the output), and [`run_jobs`] runs them on scoped threads and returns
//! their results in job order, so that sums added up in that order do not depend on the split.

/// Cores available to this process (1 when unknown), asked once: the answer reads cgroup files,
/// which costs tens of microseconds, a tenth of a small fit when asked per call.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |c| c.get()))
}

/// `f` on every job, each on a thread of its own except the first, which runs on the calling
/// thread; results in job order. A panic in a job resumes on the caller.
pub(crate) fn run_jobs<J: Send, R: Send>(jobs: Vec<J>, f: impl Fn(J) -> R + Sync) -> Vec<R> {
    let mut jobs = jobs.into_iter();
    let Some(first) = jobs.next() else { return Vec::new() };
    if jobs.len() == 0 {
        return vec![f(first)];
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = jobs.map(|job| scope.spawn(move || f(job))).collect();
        let mut results = Vec::with_capacity(handles.len() + 1);
        results.push(f(first));
        results.extend(handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))));
        results
    })
}

/// `f` on every item, the items split into at most [`cores`] contiguous groups run as jobs of
/// [`run_jobs`]; results in item order, whatever the number of cores. For independent fits (the
/// folds of a cross-validation), not for sums whose order matters.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let per_job = items.len().div_ceil(cores().min(items.len()).max(1)).max(1);
    run_jobs(items.chunks(per_job).collect(), |group: &[T]| group.iter().map(&f).collect::<Vec<R>>())
        .into_iter()
        .flatten()
        .collect()
}

/// [`map`] over items `f` changes (workers that keep state between calls).
pub(crate) fn map_mut<T: Send, R: Send>(items: &mut [T], f: impl Fn(&mut T) -> R + Sync) -> Vec<R> {
    let per_job = items.len().div_ceil(cores().min(items.len()).max(1)).max(1);
    run_jobs(items.chunks_mut(per_job).collect(), |group: &mut [T]| group.iter_mut().map(&f).collect::<Vec<R>>())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn map_keeps_item_order() {
        for n in [0, 1, 2, 5, 17] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(super::map(&items, |i| i * 10), items.iter().map(|i| i * 10).collect::<Vec<_>>());
            let mut counters = items.clone();
            assert_eq!(super::map_mut(&mut counters, |c| std::mem::replace(c, 0)), items);
            assert!(counters.iter().all(|&c| c == 0));
        }
    }
}

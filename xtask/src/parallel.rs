//! One pass over a slice on every core: the slice cut into one chunk per
//! core, each chunk's result in order. std's scoped threads do it in a few
//! lines; the callers (stat checks, a source scan) need no work stealing.

/// `work` on each chunk of `items`, one thread per core; the results in
/// the chunks' order.
pub fn by_chunks<T: Sync, R: Send>(items: &[T], work: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        parts
            .into_iter()
            .map(|part| part.join().expect("a worker thread panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_in_order() {
        let items: Vec<u32> = (0..1001).collect();
        let parts = by_chunks(&items, |part| part.to_vec());
        assert_eq!(parts.concat(), items);
        assert!(by_chunks(&[] as &[u32], |part| part.len())
            .iter()
            .all(|&n| n == 0));
    }
}

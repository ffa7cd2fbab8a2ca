//! The aggregation's vector kernels: the sparse sum of size × row over a unit's positions, and
//! the weighing pass that finds a unit's worst scenario. Both keep every element's operations
//! in the order of a naive loop (multiply and add unfused), so their bits equal the plain
//! definition's on every build; the tests compare them with it.
//!
//! [`accumulate`] is public so that the benchmark's floor (the sparse sum alone) times the
//! engine's own kernel rather than a copy of it.

/// Weighs a unit's summed P&L in place, `(pnl + collateral · move) · weight` per scenario, and
/// returns the smallest weighted cell with the first scenario that has it: one vectorised pass
/// where every scenario is a candidate and nothing else transforms the cells. The cells are
/// four lanes at a time; the padding beyond the scenarios is weighed (to zero) but never a
/// candidate.
pub(crate) fn weigh_and_find_worst(
    cells: &mut [f64],
    len: usize,
    (moves, weights): (&[f64], &[f64]),
    collateral: f64,
) -> (f64, usize) {
    use wide::f64x4;
    let lane = |v: &[f64]| f64x4::new([v[0], v[1], v[2], v[3]]);
    let whole = len / 4 * 4;
    let collateral4 = f64x4::splat(collateral);
    let mut lanes = f64x4::splat(f64::INFINITY);
    for ((c, m), w) in
        cells[..whole].chunks_exact_mut(4).zip(moves.chunks_exact(4)).zip(weights.chunks_exact(4))
    {
        let weighed = (lane(c) + collateral4 * lane(m)) * lane(w);
        c.copy_from_slice(&weighed.to_array());
        lanes = lanes.fast_min(weighed);
    }
    let lanes = lanes.to_array();
    let mut worst_pnl = lanes[0].min(lanes[1]).min(lanes[2].min(lanes[3]));
    let tail = cells[whole..len].iter_mut().zip(&moves[whole..]).zip(&weights[whole..]);
    for ((cell, m), w) in tail {
        *cell = (*cell + collateral * m) * w;
        worst_pnl = worst_pnl.min(*cell);
    }
    let target = f64x4::splat(worst_pnl);
    let worst = cells[..whole]
        .chunks_exact(4)
        .enumerate()
        .find_map(|(i, c)| {
            let mask = lane(c).simd_eq(target).to_bitmask();
            (mask != 0).then(|| 4 * i + mask.trailing_zeros() as usize)
        })
        .or_else(|| (whole..len).find(|&s| cells[s] == worst_pnl))
        .unwrap_or(0);
    (worst_pnl, worst)
}

/// `pnl[s] = Σ_p size_p · row_p[s]`, summed in position order from zero for every element.
///
/// The hot loop of a bulk refresh. Scenario blocks run outside and positions inside, so each
/// block's sums stay in registers instead of making a round trip through memory per position;
/// rows are zero-padded to whole blocks, so there is no remainder loop. The order of operations
/// per element is the same as a naive loop's, so results are bit-identical to it.
pub fn accumulate(pnl: &mut [f64], held: &[(usize, f64)], flat: &[f64], starts: &[usize]) {
    const BLOCK: usize = crate::valuation::ROW_PADDING_CELLS;
    // Wide passes first: eight independent four-lane sums keep both FP pipes busy, where one
    // pair of sums would wait on the add latency at every position.
    let mut wide = pnl.chunks_exact_mut(4 * BLOCK);
    let mut offset = 0;
    for out in &mut wide {
        accumulate_pass::<{ 4 * BLOCK }>(out, flat, starts, held, offset);
        offset += 4 * BLOCK;
    }
    for out in wide.into_remainder().chunks_exact_mut(BLOCK) {
        accumulate_pass::<BLOCK>(out, flat, starts, held, offset);
        offset += BLOCK;
    }
}

/// `out = Σ_p size_p · row_p[offset..offset + N]` for N a multiple of 4 (at most 32), with the
/// multiply and the add kept separate (never fused): the same two roundings per term on every
/// build.
#[inline(always)]
fn accumulate_pass<const N: usize>(
    out: &mut [f64],
    flat: &[f64],
    starts: &[usize],
    held: &[(usize, f64)],
    offset: usize,
) {
    use wide::f64x4;
    let mut sums = [f64x4::ZERO; 8];
    let lanes = N / 4;
    for (&start, &(_, size)) in starts.iter().zip(held) {
        // In bounds by construction: rows are padded to whole blocks and `offset + N` never
        // passes the padded length of the unit's rows.
        let values = &flat[start + offset..][..N];
        let scale = f64x4::splat(size);
        for (lane, sum) in sums.iter_mut().enumerate().take(lanes) {
            let v = &values[4 * lane..4 * lane + 4];
            *sum += scale * f64x4::new([v[0], v[1], v[2], v[3]]);
        }
    }
    for (lane, sum) in sums.iter().enumerate().take(lanes) {
        out[4 * lane..4 * lane + 4].copy_from_slice(&sum.to_array());
    }
}

#[cfg(test)]
mod tests {
    use super::weigh_and_find_worst;

    /// The vectorised pass against the plain definition: weigh every scenario, take the
    /// smallest cell, report the first scenario that has it. Lengths around the four-lane
    /// blocks, and values drawn from a handful so that ties are common.
    #[test]
    fn weighing_and_the_worst_scenario_match_the_plain_definition() {
        let mut draws = crate::test_draws(0x2545_F491);
        let mut draw = |n: u64| draws(n) as f64;
        for len in [1_usize, 3, 4, 5, 8, 59, 60, 61, 64] {
            for _ in 0..50 {
                let padded = len.next_multiple_of(8);
                let pnl: Vec<f64> = (0..padded).map(|_| draw(7) - 3.0).collect();
                let mut moves: Vec<f64> = (0..len).map(|_| (draw(5) - 2.0) / 10.0).collect();
                let mut weights: Vec<f64> = (0..len).map(|_| 1.0 - draw(3) / 4.0).collect();
                moves.resize(padded, 0.0);
                weights.resize(padded, 0.0);
                let collateral = draw(3) - 1.0;
                let plain: Vec<f64> =
                    (0..len).map(|s| (pnl[s] + collateral * moves[s]) * weights[s]).collect();
                let least = plain.iter().copied().fold(f64::INFINITY, f64::min);
                let first = plain.iter().position(|p| *p == least).unwrap_or(0);
                let mut cells = pnl.clone();
                let found = weigh_and_find_worst(&mut cells, len, (&moves, &weights), collateral);
                assert_eq!(found, (least, first), "length {len}");
                assert_eq!(&cells[..len], &plain[..], "length {len}");
            }
        }
    }
}

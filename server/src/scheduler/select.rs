//! Select: the final score of each candidate is the scorer's score plus
//! the host's adjustment, and the best one wins.

/// The scorer's scores with the host's adjustments added.
pub(super) fn final_scores(scores: &[f64], adjustments: &[f64]) -> Vec<f64> {
    scores.iter().zip(adjustments).map(|(s, a)| s + a).collect()
}

/// The index of the highest score; the first of equals, so ties go to the
/// node the rotating walk reached first.
pub(super) fn best(scores: &[f64]) -> usize {
    let mut pick = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[pick] {
            pick = i;
        }
    }
    pick
}

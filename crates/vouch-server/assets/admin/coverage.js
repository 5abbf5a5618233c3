// Verification coverage of one stats window, as the Identity verification page shows it:
// how identifies split into verified, unverified and rejected, and what share of them
// would fail with enforcement on (the unverified ones, plus those already rejected for a
// wrong proof). Pure functions, no DOM.

/** Above this share of failing identifies a window is shown in red; above 0, amber. */
export const RED_ABOVE = 0.1;

/**
 * `{total, failing, share, tone, parts}` for a window `{verified, unverified, rejected}`:
 * `share` = failing ÷ total (0 when there were none), `tone` is "none" (no identifies),
 * "good" (nothing would fail), "warn" (up to 10 %) or "bad" (more), and `parts` gives each
 * kind's share of the bar.
 */
export function coverage(w) {
  const verified = w.verified ?? 0;
  const unverified = w.unverified ?? 0;
  const rejected = w.rejected ?? 0;
  const total = verified + unverified + rejected;
  const failing = unverified + rejected;
  const share = total ? failing / total : 0;
  let tone = "none";
  if (total) tone = failing === 0 ? "good" : share > RED_ABOVE ? "bad" : "warn";
  const part = (n) => (total ? n / total : 0);
  return {
    total,
    failing,
    share,
    tone,
    parts: { verified: part(verified), unverified: part(unverified), rejected: part(rejected) },
  };
}

/** A share as a whole percentage; a share that is not 0 never rounds to "0 %". */
export function percent(share) {
  if (share > 0 && share < 0.005) return "< 1 %";
  if (share < 1 && share > 0.995) return "> 99 %";
  return `${Math.round(share * 100)} %`;
}

// crossingPercent reads planner.Metrics.crossing_share, which the planner
// already gives in percent (0..100), and rounds it; it was multiplied by
// 100 again once ("1430 % of dependency weight crosses waves").
export function crossingPercent(share: unknown): number {
  const v = Number(share ?? 0)
  if (!Number.isFinite(v) || v <= 0) return 0
  return Math.min(100, Math.round(v * 10) / 10)
}

// @ts-check
// A small summary of one peer connection's getStats(): enough for tests (and support staff)
// to tell whether media flows and which path it takes (relay or not, which address).

/**
 * The candidate pair in use: the transport's selected one, else a nominated succeeded one.
 * @param {RTCStatsReport} report
 */
function selectedPair(report) {
  for (const stat of report.values()) {
    if (stat.type === "transport" && stat.selectedCandidatePairId) {
      return report.get(stat.selectedCandidatePairId);
    }
  }
  // Some browsers do not report the transport's selection; the nominated pair is the same one.
  return [...report.values()].find(
    (stat) => stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded",
  );
}

/**
 * @param {string} remoteId
 * @param {RTCPeerConnection} pc
 */
export async function summarizePeer(remoteId, pc) {
  const report = await pc.getStats();
  let framesDecoded = 0;
  for (const stat of report.values()) {
    if (stat.type === "inbound-rtp" && stat.kind === "video") framesDecoded += stat.framesDecoded ?? 0;
  }
  const pair = selectedPair(report);
  const local = pair && report.get(pair.localCandidateId);
  const remote = pair && report.get(pair.remoteCandidateId);
  return {
    peer: remoteId,
    framesDecoded,
    connectionState: pc.connectionState,
    localCandidateType: local?.candidateType ?? null,
    localAddress: local?.address ?? null,
    remoteCandidateType: remote?.candidateType ?? null,
    remoteAddress: remote?.address ?? null,
  };
}

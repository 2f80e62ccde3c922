// Another client of the API server (its own ServiceAccount, so API Priority and Fairness treats it like any
// workload): one GET every 100 ms; its latency tells whether the measured client starves others.
import { Kube } from "./kube.js";

export function startProbe(kubeconfig: string): { stop: () => Promise<number[]> } {
  const kube = new Kube(kubeconfig);
  const latencies: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      await kube.json("GET", "/api/v1/namespaces/default");
      const ms = performance.now() - t0;
      latencies.push(ms);
      if (ms < 100) await new Promise((r) => setTimeout(r, 100 - ms)); // pacing, not synchronisation
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return latencies;
    },
  };
}

// One fake Graph API, one server pointed at it, one browser signed in to the console: what the
// console's feature tests start before their first test and stop after their last.
import path from 'node:path';
import { launch, signedInConsole } from './browser.mjs';
import { startAoun, startFakeGraph, ADMIN, REPO } from './server.mjs';

const BIN = process.env.AOUN_BIN || path.join(REPO, 'build/bot/aoun');

// `prepare(graph)` runs before the server starts (media the fake Graph API will serve, say).
export async function startConsole({ env = {}, prepare } = {}) {
  const s = {};
  s.graph = await startFakeGraph();
  if (prepare) prepare(s.graph);
  s.aoun = await startAoun(BIN, s.graph.base, env);
  s.browser = await launch();
  s.page = await signedInConsole(s.browser, s.aoun.base, ADMIN);
  s.stop = async () => {
    await s.browser?.close();
    await s.aoun?.stop();
    await s.graph?.close();
  };
  return s;
}

// The TURN fixture (e2e/lib/coturn.mjs) against the real coturn: the credentials it computes are
// the ones coturn accepts (and a bad password or an expired username is refused), and headless
// Chromium, allowed to use relay candidates only, opens a data channel through it, before and
// after a restart on the same port. Tests that rely on a relay can then trust the fixture.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { launchBrowser } from '../lib/browser.mjs';
import { startCoturn, stunAnswers, turnCredentials } from '../lib/coturn.mjs';
import { artifactPath } from '../lib/server.mjs';

const PREFIX = 'coturn_fixture';
const UCLIENT = process.env.DRAWMESH_TURNUTILS_UCLIENT || '/usr/bin/turnutils_uclient';
/** turnutils_uclient takes ~6 s here with good credentials; anything near this is a hang. */
const UCLIENT_TIMEOUT_MS = 30_000;
const RELAY_TIMEOUT_MS = 15_000;

/**
 * Runs turnutils_uclient once against the fixture (one allocation, one 100-byte message to
 * itself through the relay); its output goes to e2e/artifacts/coturn_fixture-uclient-<label>.log.
 * Killed if it runs past UCLIENT_TIMEOUT_MS.
 */
function uclient(turn, { username, credential }, label) {
  return new Promise((resolve, reject) => {
    const args = ['-y', '-n', '1', '-m', '1', '-l', '100', '-u', username, '-w', credential, '-p', String(turn.port), '127.0.0.1'];
    const child = spawn(UCLIENT, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    for (const stream of [child.stdout, child.stderr]) stream.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), UCLIENT_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${UCLIENT}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const logFile = artifactPath(`${PREFIX}-uclient-${label}.log`);
      writeFileSync(logFile, `$ ${UCLIENT} ${args.join(' ')}\n${output}\n[exit: code ${code}, signal ${signal}]\n`);
      if (signal) return reject(new Error(`turnutils_uclient (${label}) killed by ${signal} after ${UCLIENT_TIMEOUT_MS} ms; see ${logFile}`));
      resolve({ code, output, logFile });
    });
  });
}

test('coturn accepts the fixture\'s REST credentials and refuses a bad password or an expired username', { timeout: 90_000 }, async (t) => {
  const turn = await startCoturn(t, { secret: 'fixture-secret', realm: 'drawmesh.test', name: PREFIX });
  const good = turnCredentials(turn.secret, 'alice', 600);
  assert.match(good.username, /^\d+:alice$/, 'username is <unix expiry>:<peer id>');

  // Independent clients: run them side by side (each takes seconds).
  const [ok, badPassword, expired] = await Promise.all([
    uclient(turn, good, 'good'),
    uclient(turn, { username: good.username, credential: turnCredentials('not-the-secret', 'alice', 600).credential }, 'bad-password'),
    uclient(turn, turnCredentials(turn.secret, 'alice', -600), 'expired'),
  ]);
  assert.equal(ok.code, 0, `good credentials: turnutils_uclient exits 0 (see ${ok.logFile})`);
  assert.notEqual(badPassword.code, 0, `a bad password is refused (see ${badPassword.logFile})`);
  assert.match(badPassword.output, /Cannot complete Allocation/, 'refused at the allocation');
  assert.notEqual(expired.code, 0, `an expired username is refused (see ${expired.logFile})`);
});

/**
 * In-page: two RTCPeerConnections that may use relay candidates only open a data channel and
 * pass one message. Offer and answer carry their complete candidate lists (gathering is awaited),
 * so no candidate races a remote description. Everything is bounded by `timeoutMs`.
 * Returns the message and the selected pair's candidates, as the offerer's stats report them.
 */
async function relayedChannelInPage({ iceServers, timeoutMs }) {
  const config = { iceServers, iceTransportPolicy: 'relay' };
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  const gathered = (pc) =>
    new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `no message through the relay within ${timeoutMs} ms: a ${a.connectionState}/${a.iceConnectionState}, ` +
              `b ${b.connectionState}/${b.iceConnectionState}, gathering a ${a.iceGatheringState}, ` +
              `b ${b.iceGatheringState}; offer candidates: ` +
              `${(a.localDescription?.sdp.match(/a=candidate:.*/g) ?? []).join(' | ') || 'none'}`,
          ),
        ),
      timeoutMs,
    );
  });
  const exchange = async () => {
    const channel = a.createDataChannel('probe');
    const opened = new Promise((resolve) => (channel.onopen = resolve));
    const received = new Promise((resolve) => {
      b.ondatachannel = (e) => (e.channel.onmessage = (m) => resolve(m.data));
    });
    await a.setLocalDescription();
    await gathered(a);
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription();
    await gathered(b);
    await a.setRemoteDescription(b.localDescription);
    await opened;
    channel.send('through the relay');
    const message = await received;
    const stats = [...(await a.getStats()).values()];
    const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId) ??
      stats.find((s) => s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated);
    const pick = ({ candidateType, address, port, protocol, relayProtocol }) => ({ candidateType, address, port, protocol, relayProtocol });
    return {
      message,
      local: pair && pick(stats.find((s) => s.id === pair.localCandidateId)),
      remote: pair && pick(stats.find((s) => s.id === pair.remoteCandidateId)),
      offerCandidates: a.localDescription.sdp.match(/a=candidate:.*/g) ?? [],
    };
  };
  try {
    return await Promise.race([exchange(), timeout]);
  } finally {
    clearTimeout(timer);
    a.close();
    b.close();
  }
}

test('Chromium opens a data channel through the fixture with relay candidates only, before and after a restart', { timeout: 90_000 }, async (t) => {
  const turn = await startCoturn(t, { secret: 'fixture-secret', realm: 'drawmesh.test', name: `${PREFIX}-chromium` });
  const browser = await launchBrowser(t);
  const page = await browser.newPage();
  const consoleLines = [];
  page.on('console', (msg) => consoleLines.push(`[${msg.type()}] ${msg.text()}`));
  t.after(() => writeFileSync(artifactPath(`${PREFIX}-chromium.console.log`), consoleLines.join('\n') + '\n'));

  const throughRelay = async (when) => {
    const result = await page.evaluate(relayedChannelInPage, {
      // TURN usernames may not hold spaces.
      iceServers: [turn.iceServer(`page-${when.replace(/\W+/g, '-')}`, 600)],
      timeoutMs: RELAY_TIMEOUT_MS,
    });
    assert.equal(result.message, 'through the relay', `${when}: the message arrived`);
    assert.ok(result.offerCandidates.length > 0, `${when}: the offerer gathered candidates`);
    for (const c of result.offerCandidates) assert.match(c, / typ relay /, `${when}: only relay candidates are offered`);
    assert.equal(result.local?.candidateType, 'relay', `${when}: the selected pair's local candidate is a relay (${JSON.stringify(result)})`);
    assert.equal(result.local.address, '127.0.0.1', `${when}: relayed on loopback`);
    assert.ok(
      result.local.port >= turn.relayPorts.min && result.local.port <= turn.relayPorts.max,
      `${when}: relay port ${result.local.port} in the fixture's range ${JSON.stringify(turn.relayPorts)}`,
    );
  };

  await throughRelay('first start');

  // Stopped, the port goes quiet; restarted, it serves the same credentials on the same port.
  await turn.stop();
  await assert.rejects(stunAnswers(turn.port, 500), /no STUN answer/, 'a stopped server answers nothing');
  await turn.restart();
  await throughRelay('after restart');
});

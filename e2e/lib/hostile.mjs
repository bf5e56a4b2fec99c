// A hostile peer for the end-to-end tests: a browser page that is NOT the app. Plain JavaScript on
// a page of the server's origin (its /healthz, so fetch and EventSource reach the real server)
// speaks the signaling protocol itself, like the tutorial's client: POST /access, EventSource
// /connect?token=, POST /<room>/join, and offers, answers and ICE candidates through
// POST /relay/<peerId>/<event>. It makes RTCPeerConnections with the honest app pages
// (iceServers: []) and creates or adopts the channels exactly as the app expects ("drawing",
// reliable and ordered; "cursors", unordered with no retransmits): it offers to the peers already
// in the room when it joins (the server tells the joiner to offer) and answers those that join
// after it.
//
// Then it sends, over the real data channel, whatever the test tells it:
//
//   const mallory = await joinHostile(t, browser, server, room, { prefix });
//   await mallory.waitForOpen(aliceId);
//   await mallory.send(aliceId, 'not json');                      // waits until it left the buffer
//   await mallory.send(aliceId, { binary: [1, 2, 3] });           // an ArrayBuffer
//   await mallory.sendAll(aliceId, texts);                        // many, paced by bufferedAmount
//   await mallory.send(aliceId, text, { channel: 'cursors' });
//
// It stays alive in the honest pages' eyes by sending the app's ping every second, and it says
// hello (an empty version vector) so the honest pages sync it what they have: `have(author)` is
// then the highest seq of that author it has seen, which is how a test names "alice's next ops".
//
// Every send resolves only once the channel's bufferedAmount is back to 0 (the browser handed the
// bytes to SCTP); a channel that is closed, or a send the browser refuses, rejects.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openUser } from './browser.mjs';
import { REPO_ROOT } from './server.mjs';

export const PING_TEXT = '"ping"';

/** In-page: the hostile peer's state and signaling, on window.__hostile. */
function installHostile({ roomId, username, key }) {
  const h = {
    me: null,
    token: null,
    certificate: null,
    peers: {}, // id -> { username, pc, drawing, cursors, remoteSet, queued, gone, received, have }
    errors: [],
    log(line) {
      console.log(`[hostile] ${line}`);
    },
  };
  window.__hostile = h;

  const auth = () => ({ 'Content-Type': 'application/json', Authorization: `Bearer ${h.token}` });
  const relay = async (peerId, event, data) => {
    const res = await fetch(`/relay/${peerId}/${event}`, { method: 'POST', headers: auth(), body: JSON.stringify(data) });
    if (!res.ok) h.errors.push(`relay ${event} to ${peerId}: ${res.status}`);
  };

  const watch = (peer, channel) => {
    channel.binaryType = 'arraybuffer';
    channel.onmessage = (e) => {
      if (typeof e.data !== 'string' || e.data === '"ping"') return;
      peer.received += 1;
      let message;
      try {
        message = JSON.parse(e.data);
      } catch {
        return;
      }
      if (message?.hello?.cert) peer.cert = message.hello.cert;
      for (const op of message?.ops?.ops ?? []) {
        if ((peer.have[op.author] ?? 0) < op.seq) peer.have[op.author] = op.seq;
        // Each author's ops in order, as far as they run without a gap (to forge a chain on).
        const ops = (peer.ops[op.author] ??= []);
        if (op.seq === ops.length + 1) ops.push(op);
      }
    };
    if (channel.label === 'drawing') {
      channel.onopen = () => {
        h.log(`drawing channel to ${peer.username} open`);
        const hello = { hello: { have: {} } };
        if (h.certificate) hello.hello.cert = h.certificate;
        channel.send(JSON.stringify(hello));
      };
    }
  };

  const addPeer = (user, offer) => {
    const old = h.peers[user.id];
    if (old) old.pc.close();
    const pc = new RTCPeerConnection({ iceServers: [] });
    const peer = { username: user.username, pc, drawing: null, cursors: null, remoteSet: false, queued: [], gone: false, received: 0, have: {}, ops: {} };
    h.peers[user.id] = peer;
    pc.onicecandidate = (e) => {
      if (e.candidate) relay(user.id, 'ice-candidate', e.candidate.toJSON());
    };
    if (offer) {
      peer.drawing = pc.createDataChannel('drawing');
      peer.cursors = pc.createDataChannel('cursors', { ordered: false, maxRetransmits: 0 });
      watch(peer, peer.drawing);
      watch(peer, peer.cursors);
      (async () => {
        const description = await pc.createOffer();
        await pc.setLocalDescription(description);
        await relay(user.id, 'session-description', { type: description.type, sdp: description.sdp });
      })().catch((err) => h.errors.push(`offer to ${user.username}: ${err}`));
    } else {
      pc.ondatachannel = (e) => {
        if (e.channel.label === 'drawing') peer.drawing = e.channel;
        else if (e.channel.label === 'cursors') peer.cursors = e.channel;
        watch(peer, e.channel);
      };
    }
  };

  const sessionDescription = async ({ peer: user, data }) => {
    const peer = h.peers[user.id];
    if (!peer) return;
    await peer.pc.setRemoteDescription(data);
    peer.remoteSet = true;
    for (const c of peer.queued.splice(0)) await peer.pc.addIceCandidate(c);
    if (data.type === 'offer') {
      const answer = await peer.pc.createAnswer();
      await peer.pc.setLocalDescription(answer);
      await relay(user.id, 'session-description', { type: answer.type, sdp: answer.sdp });
    }
  };

  const iceCandidate = async ({ peer: user, data }) => {
    const peer = h.peers[user.id];
    if (!peer) return;
    if (peer.remoteSet) await peer.pc.addIceCandidate(data);
    else peer.queued.push(data);
  };

  const on = (source, event, handler) =>
    source.addEventListener(event, (e) => {
      Promise.resolve()
        .then(() => handler(JSON.parse(e.data)))
        .catch((err) => h.errors.push(`${event}: ${err}`));
    });

  h.ready = (async () => {
    const body = { username };
    if (key) body.key = key;
    const res = await fetch('/access', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`POST /access: ${res.status} ${await res.text()}`);
    const access = await res.json();
    h.token = access.token;
    h.me = access.user;
    h.certificate = access.certificate ?? null;
    const source = new EventSource(`/connect?token=${encodeURIComponent(h.token)}`);
    h.source = source;
    const joined = new Promise((resolve, reject) => {
      source.addEventListener('connected', () => {
        fetch(`/${roomId}/join`, { method: 'POST', headers: auth() })
          .then((r) => (r.ok ? resolve() : reject(new Error(`POST /${roomId}/join: ${r.status}`))))
          .catch(reject);
      });
    });
    on(source, 'add-peer', (m) => addPeer(m.peer, m.offer));
    on(source, 'remove-peer', (m) => {
      const peer = h.peers[m.peer.id];
      if (peer) {
        peer.gone = true;
        peer.pc.close();
      }
    });
    on(source, 'session-description', sessionDescription);
    on(source, 'ice-candidate', iceCandidate);
    await joined;
    // The app's liveness ping, so the honest pages never drop us as silent.
    h.pinger = setInterval(() => {
      for (const peer of Object.values(h.peers)) {
        if (peer.drawing?.readyState === 'open') peer.drawing.send('"ping"');
      }
    }, 1000);
    return h.me;
  })();

  /** Sends each item (a string, or {binary: [bytes]} as an ArrayBuffer) and waits for the buffer to drain. */
  h.send = async (peerId, items, channelLabel) => {
    const peer = h.peers[peerId];
    const channel = peer?.[channelLabel];
    if (!channel || channel.readyState !== 'open') {
      throw new Error(`no open ${channelLabel} channel to ${peerId} (${channel?.readyState ?? 'none'})`);
    }
    channel.bufferedAmountLowThreshold = 256 * 1024;
    let bytes = 0;
    for (const item of items) {
      // Paced like the app: at most 1 MiB waiting, so Chromium never closes the channel.
      if (channel.bufferedAmount > 1024 * 1024) {
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${channelLabel} to ${peerId} did not drain in 20 s`)), 20_000);
          channel.addEventListener('bufferedamountlow', () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
      }
      if (typeof item === 'string') {
        channel.send(item);
        bytes += item.length;
      } else {
        const buffer = new Uint8Array(item.binary).buffer;
        channel.send(buffer);
        bytes += buffer.byteLength;
      }
    }
    // Drained: every byte has left the browser's buffer for the SCTP association.
    const started = performance.now();
    while (channel.bufferedAmount > 0) {
      if (channel.readyState !== 'open') throw new Error(`${channelLabel} to ${peerId} closed while sending`);
      if (performance.now() - started > 20_000) throw new Error(`${channelLabel} to ${peerId}: ${channel.bufferedAmount} bytes still buffered after 20 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return { bytes, readyState: channel.readyState };
  };
}

/** The hostile peer, driven from the test. */
export class Hostile {
  constructor(user) {
    this.user = user;
    this.page = user.page;
  }

  /** Its own peer id (the author of its own ops). */
  get id() {
    return this.me.id;
  }

  /** Waits until its drawing channel to `peerId` is open (and the cursors channel too). */
  async waitForOpen(peerId) {
    await this.user.waitFor(
      (id) => {
        const p = window.__hostile.peers[id];
        return p?.drawing?.readyState === 'open' && p?.cursors?.readyState === 'open';
      },
      peerId,
      `the hostile peer's channels to ${peerId} to open`,
    );
  }

  /** The peer ids it has a connection with (not gone). */
  async peers() {
    return this.page.evaluate(() => Object.entries(window.__hostile.peers).filter(([, p]) => !p.gone).map(([id, p]) => ({ id, username: p.username })));
  }

  /** Waits until it lists a peer called `username` and returns its id. */
  async peerNamed(username) {
    return this.user.waitFor(
      (name) => Object.entries(window.__hostile.peers).find(([, p]) => p.username === name && !p.gone)?.[0] ?? false,
      username,
      `the hostile peer to meet ${username}`,
    );
  }

  /** The server's certificate of its key (from POST /access), once the server issues them. */
  async certificate() {
    return this.page.evaluate(() => window.__hostile.certificate);
  }

  /** The certificate `peerId` sent in its hello, if any. */
  async certificateOf(peerId) {
    return this.page.evaluate((p) => window.__hostile.peers[p]?.cert ?? null, peerId);
  }

  /** The highest seq of `author` that `peerId` has sent it (by sync or live). */
  async have(peerId, author) {
    return this.page.evaluate(([p, a]) => window.__hostile.peers[p]?.have[a] ?? 0, [peerId, author]);
  }

  /** `author`'s ops from seq 1 as `peerId` sent them, as far as they run without a gap. */
  async opsOf(peerId, author) {
    return this.page.evaluate(([p, a]) => window.__hostile.peers[p]?.ops[a] ?? [], [peerId, author]);
  }

  /** Waits until `peerId` has sent it at least `seq` of `author`'s ops. */
  async waitForHave(peerId, author, seq) {
    return this.user.waitFor(
      ([p, a, n]) => (window.__hostile.peers[p]?.have[a] ?? 0) >= n && window.__hostile.peers[p].have[a],
      [peerId, author, seq],
      `the hostile peer to have ${author}'s op ${seq} from ${peerId}`,
    );
  }

  /**
   * Sends one message (a string, or `{binary: number[]}`) on the `drawing` channel (or
   * `{channel: 'cursors'}`) and resolves once it has left the buffer: {bytes, readyState}.
   */
  async send(peerId, data, { channel = 'drawing' } = {}) {
    return this.sendAll(peerId, [data], { channel });
  }

  /** Sends many messages in order, paced by bufferedAmount; resolves once all have left. */
  async sendAll(peerId, items, { channel = 'drawing', chunk = 16 } = {}) {
    let bytes = 0;
    let readyState;
    for (let i = 0; i < items.length; i += chunk) {
      const part = items.slice(i, i + chunk);
      const sent = await this.page.evaluate(([p, xs, c]) => window.__hostile.send(p, xs, c), [peerId, part, channel]);
      bytes += sent.bytes;
      readyState = sent.readyState;
    }
    return { bytes, readyState };
  }

  /** Signaling errors it met (a failed relay, an offer that failed). */
  async errors() {
    return this.page.evaluate(() => window.__hostile.errors);
  }

  /** Leaves: closes its page (the server sees its stream end and tells the room). */
  async leave() {
    await this.user.closePage();
  }
}

/**
 * Opens the hostile peer in its own browser context on `server`'s origin and joins `room`
 * (a room URL). `key`: the hex Ed25519 public key to present to POST /access, once the server
 * signs certificates.
 */
export async function joinHostile(t, browser, server, room, { prefix, username = 'mallory', key } = {}) {
  const user = await openUser(t, browser, new URL('/healthz', server.url).href, { name: username, logPrefix: prefix });
  const roomId = new URL(room).pathname.replace(/^\//, '');
  await user.page.evaluate(installHostile, { roomId, username, key });
  const hostile = new Hostile(user);
  hostile.me = await user.page.evaluate(() => window.__hostile.ready);
  return hostile;
}

/**
 * Signed messages from the native forge tool (shared/examples/forge.rs), so no hashing or signing
 * is reimplemented here: `key` is the public key of a fresh seed, and `sign(messages)` (each an
 * array of ops; each author's chain from its seq 1, in order across the messages) returns one
 * data-channel text per message, signed with that key.
 */
export class Forger {
  constructor(seed = randomBytes(32).toString('hex')) {
    this.seed = seed;
    this.key = forge(['key', seed]).trim();
  }

  /** `edit` rewrites the job's JSON first: for numbers JavaScript cannot hold, like u64::MAX. */
  sign(messages, certs = [], edit = (json) => json) {
    const out = forge(['sign'], edit(JSON.stringify({ seed: this.seed, messages, certs })));
    const texts = out.split('\n').filter((line) => line.length > 0);
    if (texts.length !== messages.length) {
      throw new Error(`forge sign: ${messages.length} messages in, ${texts.length} texts out`);
    }
    return texts;
  }
}

// The dev profile, not --release: the workspace builds the signing crates at opt-level "z" for
// release (small wasm) and at 3 in dev, and signing 2,000 authors' chains took 7.2 s with the
// release build against 0.26 s with the dev one (this machine, 2026-11).
function forge(args, input) {
  return execFileSync('cargo', ['run', '-q', '-p', 'shared', '--example', 'forge', '--', ...args], {
    cwd: REPO_ROOT,
    input,
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
}

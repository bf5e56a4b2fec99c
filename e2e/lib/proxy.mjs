// A TCP proxy in front of the server that a test can cut and restore: one browser that reaches
// the server only through it loses the server for real (open streams break, new connections are
// refused), while the other browsers keep theirs.
//
// Why not Playwright's offline mode: checked here (Chromium 156), `context.setOffline(true)` left
// the page's open EventSource connected and its WebRTC data channels delivering, so it cuts
// neither the signaling stream nor the peers. Data channels are cut separately, by making the
// browser use relayed candidates only and stopping the TURN server (see offline.test.mjs).
//
//   const proxy = await startProxy(t, serverPort);
//   proxy.url            // 'http://127.0.0.1:PORT/'
//   proxy.cut();         // destroys every open connection, refuses new ones
//   proxy.restore();     // accepts again
//   proxy.freeze();      // open connections stay open but carry nothing more (a stalled path)

import { connect, createServer } from 'node:net';

/**
 * @param {import('node:test').TestContext | null} t  closes the proxy when the test ends
 * @param {number} targetPort  the server's port on 127.0.0.1
 * @returns {Promise<{url: string, port: number, cut: () => void, restore: () => void,
 *   freeze: () => void, close: () => Promise<void>}>}
 */
export async function startProxy(t, targetPort) {
  const sockets = new Set();
  /** Each open connection's two sockets, for freeze(). */
  const pairs = new Set();
  let cutOff = false;
  const server = createServer((client) => {
    if (cutOff) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      // A reset on one side ends the other; errors are expected when a test cuts.
      socket.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    const pair = [client, upstream];
    pairs.add(pair);
    client.on('close', () => {
      pairs.delete(pair);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  });
  await new Promise((listening, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', listening);
  });
  const { port } = server.address();
  const close = () =>
    new Promise((done) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => done());
    });
  t?.after(close);
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    cut() {
      cutOff = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      cutOff = false;
    },
    freeze() {
      // Nothing more is read from either side, so nothing is passed on, and no side sees a
      // close: to the browser, the server has simply gone quiet.
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    close,
  };
}

/**
 * Test helper: a loopback TCP proxy in front of a real server, to inject the faults a real server
 * cannot produce on demand: a reply dropped after the command ran, a half-open (silent) connection.
 */
import { once } from 'node:events';
import net from 'node:net';

/** How the proxy treats traffic right now. */
export type ProxyMode =
  /** Forward both ways. */
  | 'forward'
  /** Forward requests; swallow the server's replies (the commands run, the client never hears back). */
  | 'drop-replies'
  /** Forward requests; swallow replies, then close the client side once a reply was swallowed. */
  | 'drop-reply-then-close';

/** A running proxy. */
export interface FaultProxy {
  readonly port: number;
  /** Change how new and existing connections behave. */
  mode: ProxyMode;
  /** Number of client connections accepted so far. */
  readonly connections: number;
  /** Close every proxied connection and the listener. */
  close(): Promise<void>;
}

/** Start a proxy on a free loopback port forwarding to `127.0.0.1:targetPort`. */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const proxy: { mode: ProxyMode } = { mode: 'forward' };
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (proxy.mode === 'forward') client.write(chunk);
      else if (proxy.mode === 'drop-reply-then-close') client.destroy();
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    get mode() {
      return proxy.mode;
    },
    set mode(mode: ProxyMode) {
      proxy.mode = mode;
    },
    get connections() {
      return connections;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

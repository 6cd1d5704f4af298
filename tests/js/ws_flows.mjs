// MQTT.js (npm `mqtt`, v5) over WebSocket against a running ringmq, for
// tests/integration/transport_ws_test.cpp.
//
// Usage: node ws_flows.mjs URL [CA_FILE]
//        node --experimental-websocket ws_flows.mjs URL --native
//   URL       ws://127.0.0.1:PORT/mqtt or wss://127.0.0.1:PORT/mqtt
//   CA_FILE   for wss: the CA the server certificate must chain to (verified, as
//             a browser would); without it a wss certificate is not verified
//   --native  the WHATWG WebSocket class a browser has (Node's built-in one)
//             instead of npm `ws`, through MQTT.js' browser code path
//
// For MQTT 5.0, 3.1.1 and 3.1, a subscriber (QoS 2 subscription) and a publisher
// connect over URL; the publisher sends messages at QoS 0, 1 and 2 (and one of
// 256 KiB) and every one must arrive once, in order per topic, at its QoS. Each client
// records the WebSocket subprotocol the server agreed to: MQTT.js offers `mqtt`
// (`mqttv3.1` for 3.1), as browsers do, and the server must echo it.
//
// Prints one line per run ("v5 ok subprotocol=mqtt messages=61"), then "all ok".
// Every wait is bounded; on failure the reason goes to stderr and the exit code is 1.

import fs from 'node:fs'
import mqtt from 'mqtt'
import { WAIT_MS, Failure, check, within } from './flow_support.mjs'
import WebSocket from 'ws'

const PER_QOS = 20
const BIG = 256 * 1024
const [, , url, extra] = process.argv
const native = extra === '--native'
const caFile = native ? undefined : extra


function tlsOptions () {
  if (!url.startsWith('wss:')) return {}
  if (!caFile) return { rejectUnauthorized: false }
  return { ca: [fs.readFileSync(caFile)], rejectUnauthorized: true }
}

// A client that never reconnects, records what it receives and which
// subprotocol its WebSocket was given.
async function connect (clientId, version, native) {
  const options = {
    clientId,
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    protocolVersion: version,
    ...(version === 3 ? { protocolId: 'MQIsdp' } : {}),
    ...tlsOptions()
  }
  const sockets = []
  if (native) {
    options.forceNativeWebSocket = true
    options.createWebsocket = (u, protocols) => {
      const s = new globalThis.WebSocket(u, protocols)
      sockets.push(s)
      return s
    }
  } else {
    options.createWebsocket = (u, protocols, opts) => {
      const s = new WebSocket(u, protocols, opts.wsOptions)
      sockets.push(s)
      return s
    }
  }
  const client = mqtt.connect(url, options)
  client.received = []
  client.waiters = []
  client.on('message', (topic, payload, packet) => {
    client.received.push({ topic, payload: payload.toString(), qos: packet.qos })
    client.waiters = client.waiters.filter((w) => !w())
  })
  client.on('error', () => {}) // reported through the promise below
  await within(new Promise((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
    client.once('close', () => reject(new Failure(`${clientId}: closed before CONNACK`)))
  }), `CONNACK for ${clientId}`)
  client.subprotocol = sockets.length ? sockets[0].protocol : '(no socket)'
  return client
}

function messages (client, count, what) {
  const ready = () => client.received.length >= count
  return within(new Promise((resolve) => {
    const done = () => {
      if (!ready()) return false
      resolve(client.received)
      return true
    }
    if (!done()) client.waiters.push(done)
  }), `${count} ${what} (have ${client.received.length})`)
}

async function run (label, version, native) {
  const wanted = version === 3 ? 'mqttv3.1' : 'mqtt'
  const sub = await connect(`ws-sub-${label}`, version, native)
  const pub = await connect(`ws-pub-${label}`, version, native)
  for (const c of [sub, pub]) {
    check(c.subprotocol === wanted, `${label}: subprotocol "${c.subprotocol}", wanted "${wanted}"`)
  }
  const topic = `ws/${label}`
  const granted = await sub.subscribeAsync(`${topic}/#`, { qos: 2 })
  check(granted.length === 1 && granted[0].qos === 2, `${label}: SUBACK ${JSON.stringify(granted)}`)
  const expected = []
  for (const qos of [0, 1, 2]) {
    for (let i = 0; i < PER_QOS; ++i) {
      const payload = `${label} q${qos} #${i}`
      expected.push(`${topic}/${qos}:${qos}:${payload}`)
      // QoS 0 is fire and forget: sent without waiting, in order with the rest.
      const sent = pub.publishAsync(`${topic}/${qos}`, payload, { qos })
      if (qos > 0) await within(sent, `${label}: acknowledgement of ${payload}`)
    }
  }
  const big = 'x'.repeat(BIG)
  await within(pub.publishAsync(`${topic}/big`, big, { qos: 1 }), `${label}: big PUBACK`)
  expected.push(`${topic}/big:1:${big}`)
  const got = await messages(sub, expected.length, `${label} messages`)
  // In order per topic (one topic per QoS). Across topics MQTT.js may reorder:
  // it hands a QoS 2 message to the application at PUBREL, a QoS 1 one at once.
  const seen = got.map((m) => `${m.topic}:${m.qos}:${m.payload}`)
  for (const t of ['0', '1', '2', 'big'].map((s) => `${topic}/${s}:`)) {
    const want = expected.filter((e) => e.startsWith(t))
    const have = seen.filter((e) => e.startsWith(t))
    for (let i = 0; i < want.length; ++i) {
      check(have[i] === want[i], `${label}: message ${i} on ${t} is ` +
        `${String(have[i]).slice(0, 80)}, wanted ${want[i].slice(0, 80)}`)
    }
  }
  // Nothing more (no duplicates) after a last round trip on the subscriber.
  await within(sub.publishAsync(`${topic}/last`, 'last', { qos: 1 }), `${label}: last PUBACK`)
  await messages(sub, expected.length + 1, `${label} last message`)
  check(sub.received.length === expected.length + 1, `${label}: duplicates received`)
  await pub.endAsync()
  await sub.endAsync()
  console.log(`${label} ok subprotocol=${wanted} messages=${expected.length}`)
}

try {
  check(url && /^wss?:\/\//.test(url), 'usage: node ws_flows.mjs URL [CA_FILE]')
  // MQTT.js picks its WebSocket code path once per process: one kind per run.
  check(!native || typeof globalThis.WebSocket === 'function',
    'no built-in WebSocket class (run node with --experimental-websocket)')
  const suffix = native ? '-native' : ''
  await run(`v5${suffix}`, 5, native)
  await run(`v4${suffix}`, 4, native)
  await run(`v3${suffix}`, 3, native)
  console.log('all ok')
  process.exit(0)
} catch (e) {
  console.error(e instanceof Failure ? e.message : e.stack)
  process.exit(1)
}

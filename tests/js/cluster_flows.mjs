// MQTT.js (npm `mqtt`, v5) against two nodes of a ringmq cluster, for
// tests/cluster/cluster_clients_test.cpp.
//
// Usage: node cluster_flows.mjs SCENARIO URL_A URL_B
//   cross_node  a subscriber on B (with a subscription identifier) receives what a
//               publisher on A sends at QoS 0, 1 and 2, with its user properties
//   retained    a retained message set on A is delivered to a new subscriber on B;
//               cleared on B, a new subscriber on A gets nothing
//
// Every wait is bounded; on failure the reason goes to stderr and the exit code is 1.

import mqtt from 'mqtt'
import { WAIT_MS, Failure, check, within } from './flow_support.mjs'

const [, , scenario, urlA, urlB] = process.argv


async function connect (url, clientId) {
  const client = mqtt.connect(url, {
    protocolVersion: 5, clientId, reconnectPeriod: 0, connectTimeout: WAIT_MS
  })
  client.received = []
  client.waiters = []
  client.on('message', (topic, payload, packet) => {
    client.received.push({ topic, payload: payload.toString(), packet })
    client.waiters = client.waiters.filter((w) => !w())
  })
  client.on('error', () => {})
  await within(new Promise((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
  }), `CONNACK for ${clientId} at ${url}`)
  return client
}

function messages (client, count, what, ms = WAIT_MS) {
  const ready = () => client.received.length >= count
  return within(new Promise((resolve) => {
    const done = () => {
      if (!ready()) return false
      resolve(client.received)
      return true
    }
    if (!done()) client.waiters.push(done)
  }), `${count} ${what} (have ${client.received.length})`, ms)
}

// No message within `ms`.
async function silence (client, ms) {
  const before = client.received.length
  await new Promise((resolve) => setTimeout(resolve, ms))
  check(client.received.length === before, `unexpected message: ${JSON.stringify(client.received.at(-1)?.payload)}`)
}

const scenarios = {
  async cross_node () {
    const sub = await connect(urlB, 'js-cluster-sub')
    const pub = await connect(urlA, 'js-cluster-pub')
    await sub.subscribeAsync('js/+/x', { qos: 2, properties: { subscriptionIdentifier: 9 } })
    for (const qos of [0, 1, 2]) {
      await pub.publishAsync(`js/${qos}/x`, `q${qos}`, {
        qos, properties: { userProperties: { site: 'plant-7', qos: String(qos) }, contentType: 'text/plain' }
      })
    }
    const got = await messages(sub, 3, 'messages across nodes')
    for (const qos of [0, 1, 2]) {
      const m = got.find((g) => g.payload === `q${qos}`)
      check(m, `qos ${qos} missing`)
      check(m.packet.qos === qos, `qos ${qos} arrived at ${m.packet.qos}`)
      const p = m.packet.properties || {}
      check(p.userProperties && p.userProperties.site === 'plant-7' && p.userProperties.qos === String(qos),
        `user properties ${JSON.stringify(p.userProperties)}`)
      check(p.contentType === 'text/plain', `content type ${p.contentType}`)
      const ids = [].concat(p.subscriptionIdentifier || [])
      check(ids.includes(9), `subscription identifier ${JSON.stringify(p.subscriptionIdentifier)}`)
    }
    await sub.endAsync()
    await pub.endAsync()
  },

  async retained () {
    const setter = await connect(urlA, 'js-retain-set')
    await setter.publishAsync('js/config', 'eco', { qos: 1, retain: true })
    // The write reaches B within a batch; a new subscription is tried again until it is there.
    let seen = null
    for (let attempt = 0; attempt < 50 && !seen; ++attempt) {
      const reader = await connect(urlB, `js-retain-read-${attempt}`)
      await reader.subscribeAsync('js/#', { qos: 1 })
      try {
        seen = (await messages(reader, 1, 'retained message', 200))[0]
      } catch (e) {
        if (!(e instanceof Failure)) throw e
      }
      await reader.endAsync()
    }
    check(seen && seen.payload === 'eco' && seen.packet.retain, 'retained message not seen on B')
    const clearer = await connect(urlB, 'js-retain-clear')
    await clearer.publishAsync('js/config', '', { qos: 1, retain: true })
    let gone = false
    for (let attempt = 0; attempt < 50 && !gone; ++attempt) {
      const reader = await connect(urlA, `js-retain-check-${attempt}`)
      await reader.subscribeAsync('js/#', { qos: 1 })
      try {
        await silence(reader, 200)
        gone = true
      } catch (e) {
        if (!(e instanceof Failure)) throw e
      }
      await reader.endAsync()
    }
    check(gone, 'the cleared message is still retained on A')
    await setter.endAsync()
    await clearer.endAsync()
  }
}

try {
  await scenarios[scenario]()
  console.log('ok')
  process.exit(0)
} catch (e) {
  console.error(`FAILED: ${e.message}`)
  process.exit(1)
}

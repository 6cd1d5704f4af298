// MQTT.js (npm `mqtt`, v5) MQTT 5.0 flows against a running ringmq, for
// tests/integration/broker_mqttjs_test.cpp.
//
// Usage: node mqttjs_v5_flows.mjs PORT SCENARIO
//   connect_properties       CONNECT with properties; the CONNACK's properties
//   subscription_identifier  the identifier of SUBSCRIBE comes back in PUBLISH
//   qos_levels               publish at QoS 0, 1 and 2 and receive each at its QoS
//   user_properties          user properties (and other PUBLISH properties) round trip
//   retained                 a retained message is delivered on subscribe, then cleared
//   server_shutdown          connected clients hear DISCONNECT 0x8B Server shutting down
//                            (after printing "connected" it waits for the test to send
//                            the broker SIGTERM)
//   will                     a client whose socket is destroyed has its will published;
//                            one that disconnects normally does not (after printing
//                            "polite client disconnected" it waits for SIGUSR1, sent
//                            once the broker has logged that disconnection)
//
// Every wait is bounded; on failure the reason goes to stderr and the exit code is 1.

import mqtt from 'mqtt'
import { WAIT_MS, Failure, check, within } from './flow_support.mjs'

const [, , portArg, scenario] = process.argv
const port = Number(portArg)
const url = `mqtt://127.0.0.1:${port}`


// A client that never reconnects by itself and records what it receives.
async function connect (clientId, options = {}) {
  const client = mqtt.connect(url, {
    protocolVersion: 5,
    clientId,
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    ...options
  })
  client.received = []
  client.waiters = []
  // Acknowledgements as they came, for their reason codes.
  client.acks = []
  client.on('packetreceive', (packet) => {
    if (['puback', 'pubrec', 'pubcomp'].includes(packet.cmd)) client.acks.push(packet)
  })
  client.on('message', (topic, payload, packet) => {
    client.received.push({ topic, payload: payload.toString(), packet })
    client.waiters = client.waiters.filter((w) => !w())
  })
  client.on('error', () => {}) // reported through the promises below
  const connack = await within(new Promise((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
  }), `CONNACK for ${clientId}`)
  return { client, connack }
}

// Resolves once `count` messages satisfying `match` were received.
function messages (client, count, match = () => true, what = 'messages') {
  const ready = () => client.received.filter((m) => match(m)).length >= count
  return within(new Promise((resolve) => {
    const done = () => {
      if (!ready()) return false
      resolve(client.received.filter((m) => match(m)))
      return true
    }
    if (!done()) client.waiters.push(done)
  }), `${count} ${what} (have ${client.received.length})`)
}

const scenarios = {
  async connect_properties () {
    const { client, connack } = await connect('js-props', {
      clean: true,
      properties: {
        sessionExpiryInterval: 120,
        receiveMaximum: 10,
        maximumPacketSize: 65536,
        topicAliasMaximum: 5,
        requestResponseInformation: true,
        requestProblemInformation: true,
        userProperties: { app: 'mqttjs-test' }
      }
    })
    check(connack.returnCode === 0 || connack.reasonCode === 0, 'CONNACK not successful')
    check(connack.sessionPresent === false, 'Session Present on a clean start')
    const p = connack.properties || {}
    check(p.receiveMaximum >= 1, `CONNACK Receive Maximum: ${p.receiveMaximum}`)
    check(p.topicAliasMaximum >= 1, `CONNACK Topic Alias Maximum: ${p.topicAliasMaximum}`)
    check(typeof p.responseInformation === 'string' && p.responseInformation.length > 0,
      `CONNACK Response Information: ${p.responseInformation}`)
    await client.endAsync()

    // The session (expiry 120 s) is still there for a second connection.
    const again = await connect('js-props', {
      clean: false,
      properties: { sessionExpiryInterval: 0 }
    })
    check(again.connack.sessionPresent === true, 'Session Present not set on resume')
    await again.client.endAsync()

    // An empty client id gets one assigned.
    const anon = await connect('', { clean: true })
    const assigned = (anon.connack.properties || {}).assignedClientIdentifier
    check(typeof assigned === 'string' && assigned.length > 0,
      `Assigned Client Identifier: ${assigned}`)
    await anon.client.endAsync()
  },

  async subscription_identifier () {
    const { client } = await connect('js-sid')
    await client.subscribeAsync('js/sid/#', { qos: 1, properties: { subscriptionIdentifier: 42 } })
    await client.subscribeAsync('js/other', { qos: 1 })
    await client.publishAsync('js/sid/a', 'with id', { qos: 1 })
    await client.publishAsync('js/other', 'without id', { qos: 1 })
    const got = await messages(client, 2)
    const withId = got.find((m) => m.payload === 'with id')
    const withoutId = got.find((m) => m.payload === 'without id')
    const ids = [withId.packet.properties?.subscriptionIdentifier].flat()
    check(ids.length === 1 && ids[0] === 42, `subscription identifier: ${JSON.stringify(ids)}`)
    check(withoutId.packet.properties?.subscriptionIdentifier === undefined,
      'a subscription without identifier delivered one')
    await client.endAsync()
  },

  async qos_levels () {
    const { client: sub } = await connect('js-qos-sub')
    await sub.subscribeAsync('js/qos/#', { qos: 2 })
    const { client: pub } = await connect('js-qos-pub')
    for (const qos of [0, 1, 2]) {
      await pub.publishAsync(`js/qos/${qos}`, `at qos ${qos}`, { qos })
    }
    const acks = pub.acks.map((a) => `${a.cmd}:${a.reasonCode ?? 0}`)
    check(JSON.stringify(acks) === JSON.stringify(['puback:0', 'pubrec:0', 'pubcomp:0']),
      `acknowledgements: ${JSON.stringify(acks)}`)
    const got = await messages(sub, 3)
    const seen = got.map((m) => `${m.topic}:${m.packet.qos}:${m.payload}`)
    check(JSON.stringify(seen) === JSON.stringify(['js/qos/0:0:at qos 0', 'js/qos/1:1:at qos 1',
      'js/qos/2:2:at qos 2']), `received ${JSON.stringify(seen)}`)
    // A publish nobody subscribed to: 5.0 says so in the acknowledgement.
    await pub.publishAsync('js/nobody', 'x', { qos: 1 })
    const nobody = pub.acks[pub.acks.length - 1]
    check(nobody.cmd === 'puback' && nobody.reasonCode === 0x10,
      `no subscribers: ${nobody.cmd} reason ${nobody.reasonCode}, wanted 0x10`)
    await pub.endAsync()
    await sub.endAsync()
  },

  async user_properties () {
    const { client } = await connect('js-user')
    await client.subscribeAsync('js/user', { qos: 1 })
    await client.publishAsync('js/user', Buffer.from('{"n":1}'), {
      qos: 1,
      properties: {
        userProperties: { a: '1', b: ['x', 'y'] },
        contentType: 'application/json',
        payloadFormatIndicator: true,
        responseTopic: 'js/reply',
        correlationData: Buffer.from('corr-7'),
        messageExpiryInterval: 300
      }
    })
    const [m] = await messages(client, 1)
    const p = m.packet.properties || {}
    check(JSON.stringify(p.userProperties) === JSON.stringify({ a: '1', b: ['x', 'y'] }),
      `user properties: ${JSON.stringify(p.userProperties)}`)
    check(p.contentType === 'application/json', `content type: ${p.contentType}`)
    check(p.payloadFormatIndicator === true, `payload format: ${p.payloadFormatIndicator}`)
    check(p.responseTopic === 'js/reply', `response topic: ${p.responseTopic}`)
    check(Buffer.from(p.correlationData || '').toString() === 'corr-7',
      `correlation data: ${p.correlationData}`)
    check(p.messageExpiryInterval > 290 && p.messageExpiryInterval <= 300,
      `message expiry: ${p.messageExpiryInterval}`)
    await client.endAsync()
  },

  async retained () {
    const { client: pub } = await connect('js-ret-pub')
    await pub.publishAsync('js/ret/a', 'kept', { qos: 1, retain: true })
    const { client: sub } = await connect('js-ret-sub')
    await sub.subscribeAsync('js/ret/#', { qos: 1 })
    const [m] = await messages(sub, 1)
    check(m.topic === 'js/ret/a' && m.payload === 'kept' && m.packet.retain === true,
      `retained delivery: ${m.topic} ${m.payload} retain=${m.packet.retain}`)
    // Live messages to an existing subscription carry no retain flag...
    await pub.publishAsync('js/ret/a', 'live', { qos: 1, retain: true })
    const [, live] = await messages(sub, 2)
    check(live.payload === 'live' && live.packet.retain === false, 'live retained message flagged')
    // ... unless the subscription asks for Retain As Published.
    await sub.subscribeAsync('js/ret/rap', { qos: 1, rap: true })
    await pub.publishAsync('js/ret/rap', 'as published', { qos: 1, retain: true })
    const rap = (await messages(sub, 1, (x) => x.topic === 'js/ret/rap'))[0]
    check(rap.packet.retain === true, 'Retain As Published: retain flag cleared')
    // Retain Handling 2: no retained messages at subscribe.
    const { client: rh2 } = await connect('js-ret-rh2')
    await rh2.subscribeAsync('js/ret/a', { qos: 1, rh: 2 })
    await rh2.subscribeAsync('js/ret/rap', { qos: 1 })
    const [first] = await messages(rh2, 1)
    check(first.topic === 'js/ret/rap', `Retain Handling 2 sent ${first.topic}`)
    // An empty retained message clears it.
    await pub.publishAsync('js/ret/a', '', { qos: 1, retain: true })
    const { client: late } = await connect('js-ret-late')
    await late.subscribeAsync(['js/ret/a', 'js/ret/rap'], { qos: 1 })
    const [only] = await messages(late, 1)
    check(only.topic === 'js/ret/rap', `cleared retained message still sent: ${only.topic}`)
    for (const c of [pub, sub, rh2, late]) await c.endAsync()
  },

  async will () {
    const { client: watcher } = await connect('js-will-watcher')
    await watcher.subscribeAsync('js/will/#', { qos: 1 })

    const { client: doomed } = await connect('js-will-doomed', {
      will: {
        topic: 'js/will/doomed',
        payload: Buffer.from('doomed is gone'),
        qos: 1,
        properties: { contentType: 'text/plain', userProperties: { why: 'socket destroyed' } }
      }
    })
    // No DISCONNECT: the TCP connection just ends.
    doomed.stream.destroy()
    const [w] = await messages(watcher, 1)
    check(w.topic === 'js/will/doomed' && w.payload === 'doomed is gone',
      `will: ${w.topic} ${w.payload}`)
    check(w.packet.properties?.contentType === 'text/plain', 'will properties lost')
    const userProperties = JSON.stringify(w.packet.properties?.userProperties)
    check(userProperties === JSON.stringify({ why: 'socket destroyed' }),
      `will user properties: ${userProperties}`)
    doomed.end(true)

    // A normal DISCONNECT discards the will. The broker would publish a will
    // before it logs the disconnection; the test waits for that line and then
    // sends SIGUSR1, so the sentinel reaches the watcher after any will.
    const proceed = new Promise((resolve) => process.once('SIGUSR1', resolve))
    const { client: polite } = await connect('js-will-polite', {
      will: { topic: 'js/will/polite', payload: Buffer.from('must not be sent'), qos: 1 }
    })
    await polite.endAsync()
    console.log('polite client disconnected')
    await within(proceed, 'SIGUSR1 (the test saw the broker log the disconnection)')
    const { client: after } = await connect('js-will-after')
    await after.publishAsync('js/will/sentinel', 'sentinel', { qos: 1 })
    await messages(watcher, 1, (m) => m.topic === 'js/will/sentinel', 'sentinel')
    const topics = watcher.received.map((m) => m.topic)
    check(JSON.stringify(topics) === JSON.stringify(['js/will/doomed', 'js/will/sentinel']),
      `received ${JSON.stringify(topics)}`)
    await after.endAsync()
    await watcher.endAsync()
  },

  async server_shutdown () {
    const clients = []
    for (const id of ['js-shutdown-a', 'js-shutdown-b']) {
      const { client } = await connect(id)
      await client.subscribeAsync(`js/shutdown/${id}`, { qos: 1 })
      client.serverDisconnect = new Promise((resolve) => client.once('disconnect', resolve))
      client.closed = new Promise((resolve) => client.once('close', resolve))
      clients.push(client)
    }
    console.log('connected')
    for (const client of clients) {
      const packet = await within(client.serverDisconnect, 'DISCONNECT from the broker')
      check(packet.reasonCode === 0x8B, `DISCONNECT reason ${packet.reasonCode}, wanted 0x8B`)
      await within(client.closed, 'the connection to close')
    }
  }
}

async function main () {
  if (!port || !scenarios[scenario]) {
    console.error(`usage: node mqttjs_v5_flows.mjs PORT {${Object.keys(scenarios).join('|')}}`)
    return 2
  }
  try {
    await scenarios[scenario]()
  } catch (e) {
    console.error(`FAILED: ${e instanceof Failure ? e.message : e.stack}`)
    return 1
  }
  console.log('ok')
  return 0
}

process.exit(await main())

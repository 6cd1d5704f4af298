// One long-lived MQTT.js connection over TLS, for the certificate reload test
// in tests/integration/transport_tls_test.cpp.
//
// Usage: node tls_session.mjs PORT CA_FILE
//
// Connects to mqtts://127.0.0.1:PORT verifying the server against CA_FILE,
// subscribes to reload/# at QoS 1, does one QoS 1 round trip and prints
// "ready serial=<serial of the server certificate>". On SIGUSR1 (sent once the
// broker has reloaded its certificates) it does another round trip on the same
// connection and prints "round trip ok serial=<serial>", then disconnects.
// Every wait is bounded; on failure the reason goes to stderr and the exit code is 1.

import fs from 'node:fs'
import mqtt from 'mqtt'

const WAIT_MS = 10_000
const [, , port, caFile] = process.argv

class Failure extends Error {}

function within (promise, what, ms = WAIT_MS) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Failure(`timed out waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function roundTrip (client, payload) {
  const arrived = new Promise((resolve) => {
    const listener = (topic, message) => {
      if (message.toString() !== payload) return
      client.removeListener('message', listener)
      resolve()
    }
    client.on('message', listener)
  })
  await within(client.publishAsync('reload/check', payload, { qos: 1 }), `PUBACK of ${payload}`)
  await within(arrived, `delivery of ${payload}`)
}

function serial (client) {
  return client.stream.getPeerCertificate().serialNumber
}

try {
  const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, {
    clientId: 'tls-session',
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    ca: [fs.readFileSync(caFile)],
    rejectUnauthorized: true
  })
  client.on('error', () => {}) // reported through the promises below
  let lost = false
  client.on('close', () => { lost = true })
  await within(new Promise((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
  }), 'CONNACK')
  await within(client.subscribeAsync('reload/#', { qos: 1 }), 'SUBACK')
  await roundTrip(client, 'before')
  const signalled = new Promise((resolve) => process.once('SIGUSR1', resolve))
  console.log(`ready serial=${serial(client)}`)
  await within(signalled, 'SIGUSR1', 60_000)
  if (lost) throw new Failure('the connection was closed before the round trip')
  await roundTrip(client, 'after')
  console.log(`round trip ok serial=${serial(client)}`)
  await client.endAsync()
  process.exit(0)
} catch (e) {
  console.error(e instanceof Failure ? e.message : e.stack)
  process.exit(1)
}

// kafkajs_sasl.js - kafkajs 2.2.4 over SASL_PLAINTEXT against tallyd (issue #16).
//   node tests/interop/kafkajs_sasl.js BROKER STEP MECHANISM USER PASSWORD
// Steps:
//   roundtrip  produce COUNT records to TOPIC (env), then a consumer group reads them all
//              back byte-exact
//   wrong      connecting must fail with SASL_AUTHENTICATION_FAILED (KafkaJSSASLAuthenticationError)
//   reauth     sends one record every 300 ms for SECONDS (env, default 4) on one
//              producer; the broker's short connections.max.reauth.ms makes kafkajs
//              re-authenticate (KIP-368) on the same connection; every send must succeed
// Prints one line; exits 0 when the step passed, 1 otherwise.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const [broker, step, mechanism, username, password] = process.argv.slice(2);
const topic = process.env.TOPIC || 'kafkajs-sasl';
const count = parseInt(process.env.COUNT || '200', 10);

const kafka = new Kafka({
	clientId: 'tally-kafkajs-sasl',
	brokers: [broker],
	logLevel: logLevel.NOTHING,
	connectionTimeout: 3000,
	requestTimeout: 10000,
	reauthenticationThreshold: 500,
	retry: { retries: step === 'wrong' ? 0 : 3, initialRetryTime: 100 },
	sasl: { mechanism: mechanism.toLowerCase(), username, password },
});

function check(cond, what) {
	if (!cond)
		throw new Error(what);
}

async function roundtrip() {
	const producer = kafka.producer({ allowAutoTopicCreation: true });
	await producer.connect();
	const messages = [];
	for (let i = 0; i < count; i++)
		messages.push({ key: `k${i % 7}`, value: `${mechanism}-${i}` });
	await producer.send({ topic, acks: -1, messages });
	await producer.disconnect();
	const consumer = kafka.consumer({ groupId: `g-${topic}`, sessionTimeout: 10000 });
	await consumer.connect();
	await consumer.subscribe({ topic, fromBeginning: true });
	const seen = new Set();
	await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`read ${seen.size} of ${count} records`)), 30000);
		consumer.run({
			eachMessage: async ({ message }) => {
				seen.add(message.value.toString());
				if (seen.size === count) {
					clearTimeout(timer);
					resolve();
				}
			},
		}).catch(reject);
	});
	await consumer.disconnect();
	for (let i = 0; i < count; i++)
		check(seen.has(`${mechanism}-${i}`), `record ${i} missing`);
	console.log(`roundtrip ${mechanism}: ${count} records produced and consumed`);
}

async function wrong() {
	const admin = kafka.admin();
	try {
		await admin.connect();
		await admin.listTopics();
	} catch (e) {
		check(e.name === 'KafkaJSSASLAuthenticationError' || /SASL_AUTHENTICATION_FAILED|SASL Authentication failed/i.test(String(e.message)),
		      `wrong error ${e.name}: ${e.message}`);
		console.log(`wrong ${mechanism}: refused: ${e.message}`);
		return;
	}
	throw new Error('a wrong password was accepted');
}

async function reauth() {
	const seconds = parseFloat(process.env.SECONDS || '4');
	const producer = kafka.producer({ allowAutoTopicCreation: true });
	await producer.connect();
	const end = Date.now() + seconds * 1000;
	let sent = 0;
	while (Date.now() < end) {
		await producer.send({ topic, acks: -1, messages: [{ value: `reauth-${sent}` }] });
		sent++;
		await new Promise((r) => setTimeout(r, 300));
	}
	await producer.disconnect();
	console.log(`reauth ${mechanism}: ${sent} sends over ${seconds} s`);
}

const steps = { roundtrip, wrong, reauth };
(async () => {
	try {
		check(steps[step], `unknown step ${step}`);
		await steps[step]();
		process.exit(0);
	} catch (e) {
		console.error(`kafkajs_sasl ${step} ${mechanism}: FAILED: ${e.stack || e}`);
		process.exit(1);
	}
})();

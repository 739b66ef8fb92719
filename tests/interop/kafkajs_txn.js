// kafkajs_txn.js - kafkajs 2.2.4 transactions against tallyd.
//   node tests/interop/kafkajs_txn.js BROKER TOPIC
// A transactional producer sends 3 records and commits, then 3 more and aborts, then
// 2 more and commits. A read_committed consumer (kafkajs' default) must see exactly
// the 5 committed records, in order; the aborted ones never. Exits 0 on success.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const [broker, topic] = process.argv.slice(2);
if (!broker || !topic) {
	console.error('usage: node kafkajs_txn.js BROKER TOPIC');
	process.exit(2);
}
const kafka = new Kafka({ clientId: 'tally-kafkajs-txn', brokers: [broker], logLevel: logLevel.WARN });

async function txn(producer, values, commit) {
	const t = await producer.transaction();
	await t.send({ topic, messages: values.map((v) => ({ key: 'k', value: v })) });
	if (commit) await t.commit();
	else await t.abort();
}

async function main() {
	const admin = kafka.admin();
	await admin.connect();
	await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
	await admin.disconnect();

	const producer = kafka.producer({ transactionalId: 'kafkajs-txn', maxInFlightRequests: 1, idempotent: true });
	await producer.connect();
	await txn(producer, ['c1', 'c2', 'c3'], true);
	await txn(producer, ['a1', 'a2', 'a3'], false);
	await txn(producer, ['c4', 'c5'], true);
	await producer.disconnect();
	console.log('transactions: 2 committed, 1 aborted');

	const want = ['c1', 'c2', 'c3', 'c4', 'c5'];
	const got = [];
	const consumer = kafka.consumer({ groupId: 'kafkajs-txn-reader', readUncommitted: false });
	await consumer.connect();
	await consumer.subscribe({ topic, fromBeginning: true });
	const done = new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`timed out with ${JSON.stringify(got)}`)), 30000);
		consumer.run({
			eachMessage: async ({ message }) => {
				got.push(message.value.toString());
				if (got.length >= want.length) {
					clearTimeout(timer);
					setTimeout(resolve, 500); // anything aborted would arrive meanwhile
				}
			},
		});
	});
	await done;
	await consumer.disconnect();
	if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`read_committed saw ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
	console.log('read_committed consumer: exactly the committed records');
}

main().then(
	() => process.exit(0),
	(e) => {
		console.error(`kafkajs_txn: ${e.stack || e}`);
		process.exit(1);
	}
);

// kafkajs_offsets_by_time.js - ListOffsets by timestamp answers the first *record* at or
// after the time, as Kafka does, also inside one batch.
//   node tests/interop/kafkajs_offsets_by_time.js BROKER TOPIC
// Sends 1,000 records in one batch with timestamps 10 ms apart, then asks for the offset
// of t0 + 4,995 ms: it must be 500 (timestamp t0 + 5,000). Exits 0 on success.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const [broker, topic] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'tally-offsets-by-time', brokers: [broker], logLevel: logLevel.WARN });

async function main() {
	const admin = kafka.admin();
	await admin.connect();
	await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
	const producer = kafka.producer();
	await producer.connect();
	const t0 = Date.now() - 60000;
	const messages = [];
	for (let i = 0; i < 1000; i++) messages.push({ value: `r${i}`, timestamp: String(t0 + 10 * i) });
	await producer.send({ topic, acks: -1, messages });
	await producer.disconnect();
	const cases = [
		[t0 + 4995, '500'],
		[t0, '0'],
		[t0 + 9990, '999'],
		[t0 + 10000, '1000'], // none: kafkajs then answers the end offset
	];
	for (const [ts, want] of cases) {
		const [p] = await admin.fetchTopicOffsetsByTimestamp(topic, ts);
		if (p.offset !== want) throw new Error(`offset for t0+${ts - t0} ms: got ${p.offset}, want ${want}`);
	}
	await admin.disconnect();
	console.log('offsets by timestamp: record-exact inside a batch');
}

main().then(
	() => process.exit(0),
	(e) => {
		console.error(`kafkajs_offsets_by_time: ${e.stack || e}`);
		process.exit(1);
	}
);

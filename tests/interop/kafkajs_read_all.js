// kafkajs_read_all.js - reads partition 0 of a topic from its start with a kafkajs
// consumer and prints each record as "offset key value-size timestamp" (value-size -1 for
// a tombstone), the way kcat -f '%o %k %S %T' does, so that a test can compare the two.
//   node tests/interop/kafkajs_read_all.js BROKER TOPIC COUNT
// Stops after COUNT records; exits 1 if they do not come within 30 s.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const [broker, topic, count] = process.argv.slice(2);
const want = Number(count);
const kafka = new Kafka({ clientId: 'tally-read-all', brokers: [broker], logLevel: logLevel.WARN });

async function main() {
	const consumer = kafka.consumer({ groupId: `tally-read-all-${process.pid}` });
	await consumer.connect();
	await consumer.subscribe({ topic, fromBeginning: true });
	const lines = [];
	await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`only ${lines.length} of ${want} records in 30 s`)), 30000);
		consumer.run({
			eachMessage: async ({ partition, message }) => {
				if (partition !== 0 || lines.length >= want) return;
				const size = message.value === null ? -1 : message.value.length;
				lines.push(`${message.offset} ${message.key} ${size} ${message.timestamp}`);
				if (lines.length === want) {
					clearTimeout(timer);
					resolve();
				}
			},
		});
	});
	await consumer.disconnect();
	console.log(lines.join('\n'));
}

main().then(
	() => process.exit(0),
	(e) => {
		console.error(`kafkajs_read_all: ${e.message}`);
		process.exit(1);
	},
);

// kafkajs_acl.js - kafkajs 2.2.4 against tallyd's authorizer (test 123).
//   node tests/interop/kafkajs_acl.js BROKER
// The broker runs with super.users=User:admin and the test-only principal hook
// (tally.test.principal.from.client.id), so a clientId "User:x" is principal User:x.
// Checks the Kafka error types kafkajs reports: CLUSTER_AUTHORIZATION_FAILED for
// CreateAcls by a non-admin, TOPIC_AUTHORIZATION_FAILED for a produce without Write,
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED for a denied transactional id,
// GROUP_AUTHORIZATION_FAILED for a group without Read; an allowed transaction commits;
// createAcls/describeAcls/deleteAcls round-trip. Exits 0 on success.
'use strict';

const {
	Kafka, logLevel, AclResourceTypes: RT, AclOperationTypes: OP, AclPermissionTypes: PT,
	ResourcePatternTypes: PAT,
} = require('kafkajs');

const [broker] = process.argv.slice(2);
if (!broker) {
	console.error('usage: node kafkajs_acl.js BROKER');
	process.exit(2);
}
const as = (who) => new Kafka({
	clientId: `User:${who}`, brokers: [broker], logLevel: logLevel.NOTHING,
	retry: { retries: 1, initialRetryTime: 50 },
});

// The Kafka error type of @e or of what it wraps.
function typeOf(e) {
	for (let x = e; x; x = x.cause || (x.errors && x.errors[0])) if (x.type) return x.type;
	return `${e && e.name}: ${e && e.message}`;
}

async function expectType(what, want, fn) {
	try {
		await fn();
	} catch (e) {
		const got = typeOf(e);
		if (got !== want) throw new Error(`${what}: got ${got}, want ${want}`);
		console.log(`${what}: ${got}`);
		return;
	}
	throw new Error(`${what}: succeeded, want ${want}`);
}

const acl = (resourceType, resourceName, principal, operation, permissionType = PT.ALLOW,
	resourcePatternType = PAT.LITERAL) =>
	({ resourceType, resourceName, resourcePatternType, principal, host: '*', operation, permissionType });

async function main() {
	const admin = as('admin').admin();
	await admin.connect();
	await admin.createTopics({ topics: ['k1', 'k2', 'k3'].map((topic) => ({ topic, numPartitions: 1 })) });

	const eve = as('eve').admin();
	await eve.connect();
	await expectType('createAcls by User:eve', 'CLUSTER_AUTHORIZATION_FAILED',
		() => eve.createAcls({ acl: [acl(RT.TOPIC, 'k1', 'User:eve', OP.ALL)] }));
	await eve.disconnect();

	await admin.createAcls({
		acl: [
			acl(RT.TOPIC, 'k1', 'User:kal', OP.READ),
			acl(RT.TOPIC, 'k3', 'User:kal', OP.WRITE),
			// Describe finds the coordinator; JoinGroup needs Read.
			acl(RT.GROUP, 'kg', 'User:kal', OP.DESCRIBE),
			acl(RT.TRANSACTIONAL_ID, 'ktx-', 'User:kal', OP.WRITE, PT.ALLOW, PAT.PREFIXED),
			// Write only: Describe (implied by the prefixed Write) still finds the
			// coordinator, so InitProducerId is what is refused. (kafkajs turns a
			// FindCoordinator error into "Failed to find group coordinator".)
			acl(RT.TRANSACTIONAL_ID, 'ktx-denied', 'User:kal', OP.WRITE, PT.DENY),
		],
	});
	const all = await admin.describeAcls({
		resourceType: RT.ANY, resourcePatternType: PAT.ANY, operation: OP.ANY, permissionType: PT.ANY,
	});
	const n = all.resources.reduce((sum, r) => sum + r.acls.length, 0);
	if (n !== 5) throw new Error(`describeAcls found ${n} ACLs, want 5: ${JSON.stringify(all)}`);
	const match = await admin.describeAcls({
		resourceType: RT.TRANSACTIONAL_ID, resourceName: 'ktx-denied', resourcePatternType: PAT.MATCH,
		operation: OP.ANY, permissionType: PT.ANY,
	});
	if (match.resources.length !== 2) throw new Error(`MATCH ktx-denied: ${JSON.stringify(match)}`);

	const kal = as('kal');
	const producer = kal.producer({ retry: { retries: 0 } });
	await producer.connect();
	await expectType('produce to k1 with only Read', 'TOPIC_AUTHORIZATION_FAILED',
		() => producer.send({ topic: 'k1', messages: [{ value: 'x' }] }));
	await expectType('produce to k2 with nothing', 'TOPIC_AUTHORIZATION_FAILED',
		() => producer.send({ topic: 'k2', messages: [{ value: 'x' }] }));
	await producer.disconnect();

	await expectType('transactional id ktx-denied', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED', async () => {
		const p = kal.producer({ transactionalId: 'ktx-denied', maxInFlightRequests: 1, idempotent: true,
			retry: { retries: 1, initialRetryTime: 50 } });
		try {
			await p.connect(); // the idempotent InitProducerId: Write on k3 suffices
			await p.transaction(); // the transactional InitProducerId: refused here
		} finally {
			await p.disconnect();
		}
	});
	// InitProducerId without a transactional id: IdempotentWrite on the cluster or Write
	// on some topic (kal has Write on k3: his connect above initialised one).
	await expectType('idempotent producer of User:nobody', 'CLUSTER_AUTHORIZATION_FAILED', async () => {
		const p = as('nobody').producer({ idempotent: true, maxInFlightRequests: 1,
			retry: { retries: 1, initialRetryTime: 50 } });
		try {
			await p.connect();
		} finally {
			await p.disconnect();
		}
	});
	const ok = kal.producer({ transactionalId: 'ktx-ok', maxInFlightRequests: 1, idempotent: true });
	await ok.connect();
	const t = await ok.transaction();
	await t.send({ topic: 'k3', messages: [{ value: 'committed' }] });
	await t.commit();
	await ok.disconnect();
	console.log('transactional id ktx-ok: committed');

	await expectType('consumer group kg without Read', 'GROUP_AUTHORIZATION_FAILED', async () => {
		const c = kal.consumer({ groupId: 'kg', retry: { retries: 0 } });
		try {
			await c.connect();
			await c.subscribe({ topic: 'k1', fromBeginning: true });
			await new Promise((resolve, reject) => {
				const timer = setTimeout(() => reject(new Error('the consumer neither crashed nor read')), 15000);
				c.on(c.events.CRASH, ({ payload }) => { clearTimeout(timer); reject(payload.error); });
				c.run({ eachMessage: async () => { clearTimeout(timer); resolve(); } }).catch(reject);
			});
		} finally {
			await c.disconnect();
		}
	});

	const del = await admin.deleteAcls({
		filters: [{ resourceType: RT.TOPIC, resourceName: 'k1', resourcePatternType: PAT.LITERAL,
			principal: 'User:kal', host: '*', operation: OP.READ, permissionType: PT.ALLOW }],
	});
	const gone = del.filterResponses[0];
	if (gone.errorCode !== 0 || gone.matchingAcls.length !== 1) throw new Error(`deleteAcls: ${JSON.stringify(del)}`);
	const left = await admin.describeAcls({
		resourceType: RT.ANY, resourcePatternType: PAT.ANY, operation: OP.ANY, permissionType: PT.ANY,
	});
	const m = left.resources.reduce((sum, r) => sum + r.acls.length, 0);
	if (m !== 4) throw new Error(`after deleteAcls ${m} ACLs, want 4`);
	await admin.disconnect();
	console.log('kafkajs ACLs: ok');
}

main().then(() => process.exit(0), (e) => { console.error(e.stack || e); process.exit(1); });

// A task enqueued in your own MySQL transaction: it exists if and only if your transaction
// commits (a transactional outbox). Here an order and the task that emails its receipt.
//
//   MYSQL_URL=mysql://root@127.0.0.1:3306/tasks node examples/enqueue-in-transaction.js
//
// The tasks table is the system's (run the services, or any of them, once to create it). The
// task is found by a scheduler's next poll (POLL_INTERVAL_MS) after the commit.
import { createEnqueue } from '@tasks/sdk';
import mysql from 'mysql2/promise';
import handlers from './handlers.js';

// Given the handlers, a typed body is checked with its type's schema before it is inserted.
const enqueue = createEnqueue({ handlers });

const pool = mysql.createPool(process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/tasks');
const connection = await pool.getConnection();
try {
  await connection.query('CREATE TABLE IF NOT EXISTS orders (id SERIAL PRIMARY KEY, total INT NOT NULL)');
  await connection.beginTransaction();
  const [order] = await connection.query('INSERT INTO orders (total) VALUES (?)', [4200]);
  const task = await enqueue(connection, {
    type: 'webhook',
    url: 'https://example.com/receipts',
    payload: { order: order.insertId },
    delay_ms: 5_000,
    group: 'receipts',
  });
  await connection.commit();
  console.log(`order ${order.insertId} placed; its receipt is task ${task.id} (${task.status})`);
} catch (err) {
  await connection.rollback();
  throw err;
} finally {
  connection.release();
  await pool.end();
}

// An executor inside your own Node program, with handlers given in code (no HANDLERS module):
//
//   MYSQL_URL=mysql://root@127.0.0.1:3306/tasks node examples/embedded-executor.js
//
// It runs tasks of the type `greet` (and the original's `simulated` ones) until Ctrl-C. The API
// validates a type's body only if it knows the type: give it the same handlers with HANDLERS, or
// post bodies that need no schema.
import { startExecutor } from '@tasks/sdk';

const executor = await startExecutor({
  handlers: {
    greet: async (task, ctx) => {
      ctx.logger.info({ name: task.data.name }, 'greeting');
      return { greeting: `hello, ${task.data.name}` };
    },
  },
  settings: { CONCURRENCY: '50' },
});

process.once('SIGINT', () => {
  executor.stop().then(() => process.exit(0));
});

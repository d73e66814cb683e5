// A small express app: GET / answers a JSON body; SIGTERM ends it (it runs as PID 1).
const express = require('express');

const app = express();
const port = parseInt(process.env.PORT || '8080', 10);

app.get('/', (req, res) => res.json({ app: 'node', status: 'ok' }));

app.listen(port, '0.0.0.0', () => console.log(`listening on ${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

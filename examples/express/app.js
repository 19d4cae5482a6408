'use strict';
// An Express app, unchanged: the node sandbox serves what it exports.
// Through the front, its routes live under /express/http:
//
//   curl 'http://127.0.0.1:8080/express/http/hello/ann?greeting=hi' -H 'Cookie: visits=3'
//   curl -d '{"numbers": [1, 2, 3]}' -H 'Content-Type: application/json' http://127.0.0.1:8080/express/http/sum
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const express = require('express');
const cookieParser = require('cookie-parser');

const app = express();
app.use(express.json());
app.use(cookieParser());

// A route parameter, a query parameter and a cookie.
app.get('/hello/:name', (req, res) => {
  res.json({ hello: req.params.name, greeting: req.query.greeting || 'hello', visits: req.cookies.visits || null });
});

// A JSON body in, a cookie and JSON out.
app.post('/sum', (req, res) => {
  const numbers = Array.isArray(req.body && req.body.numbers) ? req.body.numbers : [];
  res.cookie('last', String(numbers.length), { path: '/' });
  res.json({ sum: numbers.reduce((a, b) => a + Number(b), 0) });
});

// A body of any size and bytes, read as it streams in: its length and hash.
app.post('/upload', (req, res) => {
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  req.on('data', (d) => {
    bytes += d.length;
    hash.update(d);
  });
  req.on('end', () => res.json({ bytes, sha256: hash.digest('hex') }));
});

// A streamed answer: each part leaves when written. ?gate=FILE makes part 1
// wait for that file (tests prove part 0 came while the app still ran).
app.get('/stream', async (req, res) => {
  res.type('text/plain');
  for (let i = 0; i < 3; i++) {
    res.write(`part ${i}\n`);
    if (i === 0 && req.query.gate) {
      for (let waited = 0; !fs.existsSync(req.query.gate) && waited < 60000; waited += 10) {
        await new Promise((r) => setTimeout(r, 10));
      }
    } else if (i < 2 && !req.query.gate) {
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  res.end();
});

// ?ms=N answers after N ms; &marks=DIR leaves a file named for this
// process's pid there (tests kill the slave that runs the request).
app.get('/slow', (req, res) => {
  if (req.query.marks) fs.writeFileSync(path.join(req.query.marks, String(process.pid)), '');
  setTimeout(() => res.send('slept'), Number(req.query.ms) || 1000);
});

app.get('/fail', () => {
  throw new Error('the Express app failed on purpose');
});

module.exports = app;

'use strict';
// The Node hello of bench/languages.sh: served by cocaine (args.http) and,
// for the baseline, by Node's own http server.
module.exports = (req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.end('Hello, World!\n');
};

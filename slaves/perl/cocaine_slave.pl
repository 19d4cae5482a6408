#!/usr/bin/perl
# Runs a Perl app as a slave of the engine. The engine starts
# `perl cocaine_slave.pl` in the app's unpacked package, which holds
# manifest.json, with the protocol's environment (docs/protocol.md).
use strict;
use warnings;
use FindBin ();
use lib "$FindBin::RealBin/lib";
use Cocaine::Slave ();

exit Cocaine::Slave::main();

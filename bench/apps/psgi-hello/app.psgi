# The PSGI hello of bench/languages.sh: served by cocaine and by Starman.
sub { [200, ['Content-Type' => 'text/plain'], ["Hello, World!\n"]] };

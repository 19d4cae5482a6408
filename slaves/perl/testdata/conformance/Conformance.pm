package Conformance;
# The conformance app of slaves/conformance, in Perl.
use strict;
use warnings;

sub echo {
    my ($req, $resp) = @_;
    while (defined(my $c = $req->next_chunk)) { $resp->write($c) }
    return;
}

sub sleep {
    my ($req) = @_;
    my $ms = $req->read_all;
    die Cocaine::Error->new(400, 'sleep: body must be milliseconds') unless $ms =~ /\A\d+\z/;
    return if $req->wait_cancelled($ms / 1000);
    return 'ok';
}

sub stream_upper {
    my ($req, $resp) = @_;
    while (defined(my $c = $req->next_chunk)) {
        $resp->write(uc $c);
        $resp->flush;
    }
    return;
}

sub fail { die "failing on purpose\n" }

# count answers the length of its body, which it reads only once the file
# named by $COUNT_GATE exists (conformance.UnreadBody).
sub count {
    my ($req) = @_;
    my $gate = $ENV{COUNT_GATE};
    while ($gate && !-e $gate) {
        return if $req->wait_cancelled(0.01);
    }
    return length $req->read_all;
}

# flood answers 1 KiB every 10 ms and never checks for cancellation: only the
# runtime dying in a write once the engine cancelled the session stops it
# (conformance case cancel-streaming).
sub flood {
    my ($req, $resp) = @_;
    my $data = 'x' x 1024;
    while (1) {
        $resp->write($data);
        $resp->flush;
        select(undef, undef, undef, 0.01);
    }
}

1;

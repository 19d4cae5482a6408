package Cocaine::Slave::Stream;
# The request and answer streams of one session, and the error type.
use strict;
use warnings;

package Cocaine::Error;
# die Cocaine::Error->new(400, "bad input") ends the session with that code
# of the protocol's table instead of 502.
use overload '""' => sub { $_[0]{message} }, fallback => 1;
sub new { my ($class, $code, $message) = @_; bless { code => $code, message => $message // '' }, $class }
sub code    { $_[0]{code} }
sub message { $_[0]{message} }

package Cocaine::Cancelled;
# Reads and writes of a session the engine gave up on (deadline, timeout,
# caller gone) die with this.
use overload '""' => sub { "session cancelled: $_[0]{reason}\n" }, fallback => 1;
sub new { my ($class, $reason) = @_; bless { reason => $reason }, $class }

package Cocaine::Slave::Request;
# The body of a session, read as it arrives: read($n), read_all,
# next_chunk. Reads die with Cocaine::Cancelled once the engine cancelled.

sub new {
    my ($class, $event, $session) = @_;
    bless { event => $event, session => $session, chunks => [], size => 0, done => 0, cancelled => undef }, $class;
}

sub event     { $_[0]{event} }
sub cancelled { defined $_[0]{cancelled} }

sub _push   { return unless length $_[1]; push @{ $_[0]{chunks} }, $_[1]; $_[0]{size} += length $_[1] }
sub _finish { $_[0]{done} = 1 }
sub _cancel { my ($self, $why) = @_; $self->{cancelled} //= $why; $self->{done} = 1; @{ $self->{chunks} } = (); $self->{size} = 0 }
sub _unread { return unless length $_[1]; unshift @{ $_[0]{chunks} }, $_[1]; $_[0]{size} += length $_[1] }

# _take hands out the first queued piece.
sub _take {
    my $self = shift;
    my $c = shift @{ $self->{chunks} };
    $self->{size} -= length $c if defined $c;
    return $c;
}

sub _check { die Cocaine::Cancelled->new($_[0]{cancelled}) if defined $_[0]{cancelled} }

# _fill reads frames until a chunk is there or the body ended.
sub _fill {
    my $self = shift;
    Cocaine::Slave::pump(undef, 1) while !@{ $self->{chunks} } && !$self->{done};
    $self->_check;
}

# next_chunk returns the next piece of the body as it came, or undef at
# its end.
sub next_chunk {
    my $self = shift;
    $self->_fill;
    return $self->_take;
}

# read returns up to $n bytes (at least one, unless the body ended: then
# ""), or without $n the rest of the body.
sub read {
    my ($self, $n) = @_;
    return $self->read_all unless defined $n;
    return '' if $n <= 0;
    $self->_fill;
    my $c = $self->_take // return '';
    if (length $c > $n) {
        $self->_unread(substr($c, $n));
        $c = substr($c, 0, $n);
    }
    return $c;
}

sub read_all {
    my $self = shift;
    my $out = '';
    while (defined(my $c = $self->next_chunk)) { $out .= $c }
    return $out;
}

# wait_cancelled sleeps up to $secs seconds, returning true early when the
# session is cancelled.
sub wait_cancelled {
    my ($self, $secs) = @_;
    my $until = Time::HiRes::time() + $secs;
    while (!$self->cancelled) {
        my $left = $until - Time::HiRes::time();
        last if $left <= 0;
        Cocaine::Slave::pump($left);
    }
    return $self->cancelled;
}

package Cocaine::Slave::Response;
# The answer of a session: write() buffers up to 64 KiB, flush() sends what
# is buffered, close() ends the answer; the last chunk and the end leave in
# one write.

use constant BUFFER_SIZE => 64 << 10;

sub new {
    my ($class, $session, $req) = @_;
    bless { session => $session, req => $req, buf => '', cut => [], closed => 0 }, $class;
}

sub write {
    my ($self, $data) = @_;
    $self->_usable;
    return unless defined $data && length $data;
    utf8::encode($data) if utf8::is_utf8($data);
    $self->{buf} .= $data;
    $self->_send if length $self->{buf} >= BUFFER_SIZE;
}

sub flush {
    my $self = shift;
    $self->_usable;
    $self->_send;
}

# _send sends what is buffered, unless the engine cancelled the session
# meanwhile: reading the frames already waiting is how a handler that never
# reads sees the cancel, and then it dies with Cocaine::Cancelled.
sub _send {
    my $self = shift;
    Cocaine::Slave::poll();
    $self->{req}->_check;
    my $f = $self->_frames;
    Cocaine::Slave::send_bytes($f) if length $f;
}

sub close { $_[0]->_end(Cocaine::Slave::frame_choke($_[0]{session})) }
sub _fail { $_[0]->_end(Cocaine::Slave::frame_error($_[0]{session}, $_[1], $_[2])) }
sub closed { $_[0]{closed} }

# _end_chunk makes what was written a chunk of its own (the HTTP head).
sub _end_chunk {
    my $self = shift;
    push @{ $self->{cut} }, $self->{buf} if length $self->{buf};
    $self->{buf} = '';
}

sub _usable {
    my $self = shift;
    die "response already closed\n" if $self->{closed};
    $self->{req}->_check;
}

sub _end {
    my ($self, $last) = @_;
    return if $self->{closed};
    $self->{closed} = 1;
    Cocaine::Slave::send_bytes($self->_frames . $last);
}

sub _frames {
    my $self = shift;
    my @chunks = (@{ $self->{cut} }, length $self->{buf} ? ($self->{buf}) : ());
    $self->{cut} = [];
    $self->{buf} = '';
    return join '', map { Cocaine::Slave::frame_chunks($self->{session}, $_) } @chunks;
}

1;

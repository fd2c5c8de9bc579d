#!/usr/bin/perl
# An SMSC built on Net::SMPP (Debian libnet-smpp-perl): a peer the bridge's authors did not write.
#
# Driven by tests/peers/perl_smpp.py over stdin/stdout, one JSON object per line, in the
# same protocol as tests/peers/node_smpp/smsc.js:
# Out: {"event": "listening", "port": N}; {"event": "pdu", "pdu": {...}} for every PDU the
# bridge sends (Net::SMPP's decoding; short_message as {"hex": ...}); {"event": "reply",
# "id": ..., "pdu": {...}} when a request we sent got its response; {"event": "sent", "id":
# ..., "sequence_number": N}; "bind", "close", "done", "error".
# In: {"id": ..., "op": "deliver_sm" | "alert_notification" | "enquire_link", "params": {...}}
# (short_message as a string or {"hex": ...}); {"op": "set", "receipts": bool}; {"op": "drop"}.
use strict;
use warnings;
use IO::Select;
use IO::Handle;
use JSON::PP;
use Net::SMPP;

STDOUT->autoflush(1);
my $json = JSON::PP->new->canonical;
my %state = (receipts => 1, next_id => 9001);
my %waiting;    # our request's sequence number -> the command id that asked for it

sub emit { print $json->encode($_[0]), "\n"; }

my $listen = Net::SMPP->new_listen('127.0.0.1', port => 0, smpp_version => 0x34, async => 1)
    or die "cannot listen: $!";
emit({event => 'listening', port => $listen->sockport});

my $select = IO::Select->new($listen, \*STDIN);
my @sessions;

my %FIELDS = map { $_ => 1 } qw(
    system_id password system_type interface_version addr_ton addr_npi address_range
    service_type source_addr_ton source_addr_npi source_addr dest_addr_ton dest_addr_npi
    destination_addr esm_class protocol_id priority_flag schedule_delivery_time
    validity_period registered_delivery replace_if_present_flag data_coding sm_default_msg_id
    message_id esme_addr_ton esme_addr_npi esme_addr
);

sub describe {
    my ($pdu) = @_;
    my %out = (
        command => $pdu->explain_cmd,
        command_id => $pdu->{cmd},
        command_status => $pdu->{status},
        sequence_number => $pdu->{seq},
    );
    for my $key (keys %FIELDS) {
        $out{$key} = $pdu->{$key} if defined $pdu->{$key};
    }
    $out{short_message} = {hex => unpack('H*', $pdu->{short_message})}
        if defined $pdu->{short_message};
    return \%out;
}

sub receipt_for {
    my ($pdu, $id) = @_;
    my $text = "id:$id sub:001 dlvrd:001 submit date:2611221200 done date:2611221201 "
        . "stat:DELIVRD err:000 text:";
    return (
        source_addr_ton => $pdu->{dest_addr_ton}, source_addr_npi => $pdu->{dest_addr_npi},
        source_addr => $pdu->{destination_addr}, dest_addr_ton => $pdu->{source_addr_ton},
        dest_addr_npi => $pdu->{source_addr_npi}, destination_addr => $pdu->{source_addr},
        esm_class => 0x04, data_coding => 0, short_message => $text,
        receipted_message_id => "$id\0", 0x0427 => 2,
    );
}

sub on_pdu {
    my ($conn, $pdu) = @_;
    my $cmd = $pdu->{cmd};
    emit({event => 'pdu', pdu => describe($pdu)});
    if ($cmd & 0x80000000) {
        my $id = delete $waiting{$pdu->{seq}};
        emit({event => 'reply', id => $id, pdu => describe($pdu)}) if defined $id;
    } elsif ($cmd == 0x00000009) {
        $conn->bind_transceiver_resp(seq => $pdu->{seq}, system_id => 'perl-smsc');
        emit({event => 'bind', command => 'bind_transceiver', system_id => $pdu->{system_id}});
    } elsif ($cmd == 0x00000002) {
        $conn->bind_transmitter_resp(seq => $pdu->{seq}, system_id => 'perl-smsc');
        emit({event => 'bind', command => 'bind_transmitter', system_id => $pdu->{system_id}});
    } elsif ($cmd == 0x00000001) {
        $conn->bind_receiver_resp(seq => $pdu->{seq}, system_id => 'perl-smsc');
        emit({event => 'bind', command => 'bind_receiver', system_id => $pdu->{system_id}});
    } elsif ($cmd == 0x00000015) {
        $conn->enquire_link_resp(seq => $pdu->{seq});
    } elsif ($cmd == 0x00000006) {
        $conn->unbind_resp(seq => $pdu->{seq});
    } elsif ($cmd == 0x00000004) {
        my $id = $state{next_id}++;
        $conn->submit_sm_resp(seq => $pdu->{seq}, message_id => "$id");
        $conn->deliver_sm(receipt_for($pdu, $id)) if $state{receipts} && ($pdu->{registered_delivery} & 1);
    } else {
        $conn->generic_nack(seq => $pdu->{seq}, status => 0x00000003);
    }
}

sub close_session {
    my ($conn) = @_;
    $select->remove($conn);
    @sessions = grep { $_ != $conn } @sessions;
    $conn->close;
    emit({event => 'close'});
}

sub on_command {
    my ($line) = @_;
    my $cmd = eval { $json->decode($line) };
    if (!$cmd) { emit({event => 'error', message => "bad command: $line"}); return; }
    my $op = $cmd->{op};
    if ($op eq 'set') {
        $state{receipts} = $cmd->{receipts} ? 1 : 0 if exists $cmd->{receipts};
        emit({event => 'done', id => $cmd->{id}});
        return;
    }
    if ($op eq 'drop') {
        close_session($_) for @sessions;
        emit({event => 'done', id => $cmd->{id}});
        return;
    }
    my $conn = $sessions[-1];
    my %ops = map { $_ => 1 } qw(deliver_sm alert_notification enquire_link);
    if (!$conn || !$ops{$op}) {
        emit({event => 'error', id => $cmd->{id}, message => "no session for $op"});
        return;
    }
    my %params = %{$cmd->{params} || {}};
    if (ref $params{short_message} eq 'HASH') {
        $params{short_message} = pack('H*', $params{short_message}{hex});
    }
    my @args;
    for my $key (sort keys %params) {
        my $value = $params{$key};
        $value = 0 + $value if $key =~ /_(ton|npi)$|^(esm_class|data_coding|registered_delivery)$/;
        push @args, $key, $value;
    }
    my $seq = $conn->$op(@args);
    $waiting{$seq} = $cmd->{id} if $op ne 'alert_notification';
    emit({event => 'sent', id => $cmd->{id}, sequence_number => $seq});
}

while (1) {
    for my $fh ($select->can_read) {
        if ($fh == $listen) {
            my $conn = $listen->accept or next;
            push @sessions, $conn;
            $select->add($conn);
        } elsif ($fh == \*STDIN) {
            my $line = <STDIN>;
            if (!defined $line) { close_session($_) for @sessions; exit 0; }
            chomp $line;
            on_command($line) if length $line;
        } else {
            my $pdu = $fh->read_pdu;
            if (!$pdu) { close_session($fh); next; }
            on_pdu($fh, $pdu);
        }
    }
}

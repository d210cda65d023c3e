//! The frame check's invariants, as checks that panic when broken: the
//! fuzz target (`proxy/fuzz`, `h2_frames`) and the unit tests run them on
//! arbitrary bytes. However a client's bytes are split into reads, the
//! check refuses the same frames with the same code, never later than
//! where the frame starts whole, and never panics.

use super::frames::FrameCheck;
use h2::Reason;

/// Scans `input` whole and in reads of `step` octets (at least 1): both
/// refuse, or neither, with the same code; split reads refuse no earlier
/// than the whole scan does.
pub fn check_frame_scan(input: &[u8], step: usize) {
    let whole = scan_in(input, input.len().max(1));
    let split = scan_in(input, step.max(1));
    match (whole, split) {
        (None, None) => {}
        (Some((w, rw)), Some((s, rs))) => {
            assert_eq!(rw, rs, "the code differs when read {step} octets at a time");
            assert!(
                w <= s,
                "refused at {s} in reads of {step}, before the frame at {w}"
            );
        }
        _ => panic!("whole: {whole:?}, in reads of {step}: {split:?}"),
    }
}

/// Where (absolute offset) and why the check refuses `input` read `step`
/// octets at a time.
fn scan_in(input: &[u8], step: usize) -> Option<(usize, Reason)> {
    let mut check = FrameCheck::default();
    let mut offset = 0;
    for read in input.chunks(step) {
        if let Err((at, reason)) = check.scan(read) {
            assert!(
                at <= read.len(),
                "cut at {at} of a {}-octet read",
                read.len()
            );
            // Refused once, refused for good.
            assert_eq!(check.scan(b"more").map_err(|e| e.1), Err(reason));
            return Some((offset + at, reason));
        }
        offset += read.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame header: length, type, flags, stream.
    fn frame(len: u32, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.extend([kind, flags]);
        f.extend(stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn every_split_agrees() {
        let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        input.extend(frame(6, 0x4, 0, 0, &[0, 4, 0xff, 0xff, 0xff, 0xff]));
        input.extend(frame(8, 0x6, 0, 0, &[0; 8]));
        input.extend(frame(3, 0x0, 1, 1, b"abc"));
        input.extend(frame(3, 0x0, 0, 1, b"def"));
        for step in 1..input.len() {
            check_frame_scan(&input, step);
        }
        assert_eq!(
            scan_in(&input, 7).map(|r| r.1),
            Some(Reason::FLOW_CONTROL_ERROR),
            "the window above 2^31-1 is refused first"
        );
    }
}

import uuid
from tests.conftest import drive
from jobs.models import Batch, Video
def test_dbg(alice_client, completed, django_capture_on_commit_callbacks):
    r = alice_client.get(f"/videos/{completed.pk}/batch/")
    body = r.content.decode()
    i = body.index("data-batch-cost"); print(body[i-100:i+200])
    i = body.index("Estimated cost"); print(body[i:i+200])
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/videos/{completed.pk}/batch/", {"prompts": "a\nb\nc", "variations": 1, "key": str(uuid.uuid4())})
    batch = Batch.objects.get()
    drive(lambda: all(v.is_final for v in Video.objects.filter(batch=batch)))
    page = alice_client.get(f"/batches/{batch.pk}/").content.decode()
    i = page.index('id="batch-summary"'); print(page[i:i+400])
